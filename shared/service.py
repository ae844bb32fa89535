"""The composition root every service shares: settings, database, migrations, events, errors, probes, lifecycle.

`create_app(spec)` builds a service's FastAPI app. Its lifespan, in order: settings and logging; migrations;
the database (`app.state.db`); the relay, woken by every commit that published; the service's own start-up
(`spec.on_startup`); the event handlers, built by `spec.handlers(app)` with what start-up made, and the consumer
that runs them. Every background task is started through `app.state.tasks` and stopped in one place at shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from shared.auth import Principal, principal_for
from shared.config import Settings, load_settings
from shared.db import Database
from shared.events import inboxes
from shared.events.consumer import Broadcast, Consumer, Handler, Listener
from shared.events.relay import Relay
from shared.events.topics import ALL_TOPICS
from shared.idempotency import Answer, IdempotencyKey, key_for
from shared.logs import configure_logging
from shared.migrate import migrate
from shared.problems import install_problem_handlers, problem_response

log = logging.getLogger("yibao.service")

LATENCY = Histogram(
    "yibao_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

Hook = Callable[[FastAPI], Awaitable[None]]
HandlerFactory = Callable[[FastAPI], dict[str, Handler]]
ListenerFactory = Callable[[FastAPI], dict[str, Listener]]


@dataclass
class ServiceSpec:
    """What makes one service: its name (= schema), routes, migrations and the handlers of its events."""

    name: str
    title: str
    routers: list[APIRouter]
    migrations_dir: Path
    handlers: HandlerFactory | None = None
    broadcasts: ListenerFactory | None = None  # topics every instance hears, for what it keeps in memory
    gate: Callable[[Any], Any] = field(default_factory=lambda: Gate)  # outermost middleware: who may send a body
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    publishes: bool = True


async def stop_task(task: asyncio.Task[Any], timeout: float = 5.0) -> None:
    """Cancel a task and wait (bounded) until it has ended."""
    task.cancel()
    try:
        await asyncio.wait_for(task, timeout)
    except (TimeoutError, asyncio.CancelledError, Exception):
        pass


@dataclass
class Tasks:
    """The app's background tasks: started here, all stopped together at shutdown."""

    running: list[asyncio.Task[Any]] = field(default_factory=list)

    def start(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self.running.append(task)
        return task

    async def stop_all(self) -> None:
        while self.running:
            await stop_task(self.running.pop())


async def get_db(request: Request) -> Database:
    """The service's database (from the composition root); async, so that FastAPI does not hand it to a thread."""
    return request.app.state.db  # type: ignore[no-any-return]


Db = Annotated[Database, Depends(get_db)]


def idempotency_key(request: Request, principal: Principal, body: Any) -> IdempotencyKey | None:
    """The request's Idempotency-Key (shared.idempotency), scoped by the caller."""
    return key_for(request.headers, method=request.method, path=request.url.path, principal=principal, body=body)


def respond(answer: Answer) -> Response:
    """An Answer as the HTTP response (its bytes as stored; replays say so)."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(content=answer.body, status_code=answer.status, media_type="application/json", headers=headers)


class Gate:
    """Bounded work before a request gets in, and the time of every request.

    - A request that carries a body (POST, PUT, PATCH) without a valid X-Api-Key is refused (401) before a byte of
      its body is read: every such route needs a key.
    - A body above the bound is refused (413): by its Content-Length before it is read, and a body without one
      (chunked) as it streams, at the first chunk past the bound. Such a body is read here, within the bound, and
      handed to the app as it came.

    Plain ASGI on purpose: Starlette's BaseHTTPMiddleware runs the app in a task of its own and streams the
    response through a memory channel, which cost about a fifth of a small request's CPU."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] in BODY_METHODS:
            settings = scope["app"].state.settings
            refused = _refusal(headers, settings)
            if refused is not None:
                await refused(scope, receive, send)
                return
            if b"content-length" not in headers:
                body = await read_bounded(receive, settings.max_body_bytes)
                if body is None:
                    await _too_large(settings.max_body_bytes)(scope, receive, send)
                    return
                receive = replay_body(body)
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            LATENCY.labels(scope["method"], getattr(route, "path", "unmatched"), status).observe(
                time.perf_counter() - started
            )


def _too_large(limit: int) -> Response:
    return problem_response(413, "BODY_TOO_LARGE", f"request body above {limit} bytes", headers={"Connection": "close"})


def _refusal(headers: dict[bytes, bytes], settings: Settings) -> Response | None:
    """413 for a declared length above the bound, 401 without a valid key; None: let it in."""
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
        return _too_large(settings.max_body_bytes)
    key = headers.get(b"x-api-key", b"").decode("latin-1")
    if not key or principal_for(settings.api_keys, key) is None:
        detail = "unknown API key" if key else "missing X-Api-Key header"
        return problem_response(
            401, "UNAUTHENTICATED", detail, headers={"WWW-Authenticate": "ApiKey", "Connection": "close"}
        )
    return None


async def read_bounded(receive: Any, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def replay_body(body: bytes) -> Any:
    """An ASGI receive that hands over a body read already, then waits for the client to go."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that keeps the connection open: until the app is done
        return {"type": "http.disconnect"}

    return receive


GC_THRESHOLDS = (20_000, 20, 20)


def _tune_gc() -> None:
    """What startup built (modules, routes, pools, policy) lives as long as the process: freeze it out of
    the collector's scans. And collect the youngest generation every 20,000 allocations instead of 700:
    a request allocates a few thousand short-lived objects, almost all freed by reference counting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    """Build a service's FastAPI app; everything long-lived is created in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        cfg = settings or load_settings(spec.name)
        configure_logging(spec.name, cfg.log_level)
        app.state.settings = cfg
        app.state.service = spec.name
        await migrate(cfg.database_url, schema=spec.name, migrations_dir=spec.migrations_dir)
        db = await Database.open(cfg.database_url, schema=spec.name, size=cfg.db_pool_size)
        tasks = Tasks()
        app.state.db = db
        app.state.tasks = tasks
        app.state.relay = None
        app.state.consumer = None
        asking = inboxes.ConsumerInboxes.from_settings(cfg)
        try:
            if spec.publishes and cfg.relay_enabled:
                relay = Relay(
                    db=db,
                    bootstrap=cfg.kafka_bootstrap,
                    topics=ALL_TOPICS,
                    partitions=cfg.kafka_partitions,
                    poll_seconds=cfg.relay_poll_seconds,
                    batch=cfg.relay_batch,
                    retention_hours=cfg.outbox_retention_hours,
                    inbox=asking,
                )
                db.on_publish = relay.wake
                app.state.relay = relay
                tasks.start(relay.run(), name=f"{spec.name}-relay")
            if spec.on_startup is not None:
                await spec.on_startup(app)
            if spec.handlers is not None and cfg.consumers_enabled:
                consumer = Consumer(
                    db=db,
                    bootstrap=cfg.kafka_bootstrap,
                    group_id=spec.name,
                    handlers=spec.handlers(app),
                    partitions=cfg.kafka_partitions,
                )
                app.state.consumer = consumer
                tasks.start(consumer.run(), name=f"{spec.name}-consumer")
            if spec.broadcasts is not None and cfg.consumers_enabled:
                broadcast = Broadcast(bootstrap=cfg.kafka_bootstrap, listeners=spec.broadcasts(app))
                tasks.start(broadcast.run(), name=f"{spec.name}-broadcast")
            if settings is None:  # a service process of its own (tests build many apps in one process)
                _tune_gc()
            log.info("%s started", spec.name)
            yield
        finally:
            if spec.on_shutdown is not None:
                await spec.on_shutdown(app)
            await tasks.stop_all()
            for part in (app.state.relay, app.state.consumer):
                if part is not None:
                    await part.stop()
            await asking.aclose()
            await db.close()
            log.info("%s stopped", spec.name)

    app = FastAPI(title=spec.title, version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_middleware(spec.gate)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> Response:
        checks = {"database": "ok", "broker": "ok"}
        try:
            await request.app.state.db.ping(timeout=2)
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        relay, consumer = request.app.state.relay, request.app.state.consumer
        if relay is not None and not relay.ready:
            checks["broker"] = "down: the relay is not connected"
        elif consumer is not None and not consumer.ready:
            checks["broker"] = "down: the consumer has not joined its group"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "service": spec.name, "checks": checks})
        return problem_response(
            503,
            "NOT_READY",
            f"not ready: {checks}",
            errors=[{"field": k, "code": "DOWN", "detail": v} for k, v in checks.items() if v != "ok"],
        )

    @app.get("/metrics", tags=["probes"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if spec.handlers is not None:
        app.include_router(inboxes.router)
    for router in spec.routers:
        app.include_router(router)
    return app
