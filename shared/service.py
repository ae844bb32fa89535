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

from shared.auth import Principal
from shared.config import Settings, load_settings
from shared.db import Database
from shared.events.consumer import Consumer, Handler
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


@dataclass
class ServiceSpec:
    """What makes one service: its name (= schema), routes, migrations and the handlers of its events."""

    name: str
    title: str
    routers: list[APIRouter]
    migrations_dir: Path
    handlers: HandlerFactory | None = None
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


def get_db(request: Request) -> Database:
    """The service's database (from the composition root)."""
    return request.app.state.db  # type: ignore[no-any-return]


Db = Annotated[Database, Depends(get_db)]


def idempotency_key(request: Request, principal: Principal, body: Any) -> IdempotencyKey | None:
    """The request's Idempotency-Key (shared.idempotency), scoped by the caller."""
    return key_for(request.headers, method=request.method, path=request.url.path, principal=principal, body=body)


def respond(answer: Answer) -> Response:
    """An Answer as the HTTP response (its bytes as stored; replays say so)."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(content=answer.body, status_code=answer.status, media_type="application/json", headers=headers)


class BodyLimit:
    """Refuse bodies larger than the configured bound before reading them, and time every request.

    Plain ASGI on purpose: Starlette's BaseHTTPMiddleware runs the app in a task of its own and streams the
    response through a memory channel, which cost about a fifth of a small request's CPU."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = problem_response(413, "BODY_TOO_LARGE", f"request body above {self.max_bytes} bytes")
            await response(scope, receive, send)
            return
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
            await db.close()
            log.info("%s stopped", spec.name)

    app = FastAPI(title=spec.title, version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=(settings.max_body_bytes if settings else 2_000_000))

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> Response:
        checks = {"database": "ok", "broker": "ok"}
        try:
            await asyncio.wait_for(request.app.state.db.ping(), 2)
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        parts = [p for p in (request.app.state.relay, request.app.state.consumer) if p is not None]
        if parts and not all(p.connected for p in parts):
            checks["broker"] = "down: not connected"
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

    for router in spec.routers:
        app.include_router(router)
    return app
