"""The composition root every service shares: settings, database, migrations, events, errors, probes."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from sqlalchemy import MetaData

from shared.config import Settings, load_settings
from shared.db import make_engine, make_sessionmaker, ping
from shared.events.consumer import Consumer, Handler
from shared.events.relay import Relay
from shared.events.tables import EventTables
from shared.events.topics import ALL_TOPICS
from shared.logs import configure_logging
from shared.migrate import migrate
from shared.problems import install_problem_handlers, problem_response

log = logging.getLogger("yibao.service")

LATENCY = Histogram("yibao_http_request_seconds", "HTTP request latency", ["method", "route", "status"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

Hook = Callable[[FastAPI], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What makes one service: its name (= schema), routes, tables, migrations and event handlers."""

    name: str
    title: str
    routers: list[APIRouter]
    metadata: MetaData
    events: EventTables
    migrations_dir: Path
    handlers: dict[str, Handler] = field(default_factory=dict)
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    after_event: Callable[[FastAPI, object], Awaitable[None]] | None = None
    publishes: bool = True


class BodyLimit:
    """Refuse bodies larger than the configured bound before reading them, and time every request.

    Plain ASGI on purpose: Starlette's BaseHTTPMiddleware runs the app in a task of its own and streams the
    response through a memory channel, which cost about a fifth of a small request's CPU."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
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

        async def timed_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            LATENCY.labels(scope["method"], getattr(route, "path", "unmatched"), status).observe(
                time.perf_counter() - started)


def wake_relay(request: Request) -> None:
    """Tell the relay that the transaction just committed has events to publish."""
    relay = getattr(request.app.state, "relay", None)
    if relay is not None:
        relay.wake()


async def _stop_task(task: asyncio.Task | None, timeout: float = 5.0) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await asyncio.wait_for(task, timeout)
    except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
        pass


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
    async def lifespan(app: FastAPI):
        cfg = settings or load_settings(spec.name)
        configure_logging(spec.name, cfg.log_level)
        engine = make_engine(cfg.database_url, pool_size=cfg.db_pool_size)
        app.state.settings = cfg
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        app.state.tables = spec.events
        app.state.service = spec.name
        await migrate(engine, schema=spec.name, migrations_dir=spec.migrations_dir)
        tasks: list[asyncio.Task] = []
        app.state.relay = None
        app.state.consumer = None
        if spec.publishes and cfg.relay_enabled:
            relay = Relay(sessions=app.state.sessions, outbox=spec.events.outbox, bootstrap=cfg.kafka_bootstrap,
                          topics=ALL_TOPICS, partitions=cfg.kafka_partitions, poll_seconds=cfg.relay_poll_seconds,
                          batch=cfg.relay_batch, retention_hours=cfg.outbox_retention_hours)
            app.state.relay = relay
            tasks.append(asyncio.create_task(relay.run(), name=f"{spec.name}-relay"))
        if spec.handlers and cfg.consumers_enabled:
            consumer = Consumer(sessions=app.state.sessions, tables=spec.events, bootstrap=cfg.kafka_bootstrap,
                                group_id=spec.name, handlers=spec.handlers, partitions=cfg.kafka_partitions,
                                after_commit=(lambda event: spec.after_event(app, event)) if spec.after_event else None)
            app.state.consumer = consumer
            tasks.append(asyncio.create_task(consumer.run(), name=f"{spec.name}-consumer"))
        if spec.on_startup is not None:
            await spec.on_startup(app)
        if settings is None:  # a service process of its own (tests build many apps in one process)
            _tune_gc()
        log.info("%s started", spec.name)
        try:
            yield
        finally:
            if spec.on_shutdown is not None:
                await spec.on_shutdown(app)
            for task in tasks:
                await _stop_task(task)
            for part in (app.state.relay, app.state.consumer):
                if part is not None:
                    await part.stop()
            await engine.dispose()
            log.info("%s stopped", spec.name)

    app = FastAPI(title=spec.title, version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=(settings.max_body_bytes if settings else 2_000_000))

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> Response:
        checks = {"database": "ok", "broker": "ok"}
        try:
            await asyncio.wait_for(ping(request.app.state.engine), 2)
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        parts = [p for p in (request.app.state.relay, request.app.state.consumer) if p is not None]
        if parts and not all(p.connected for p in parts):
            checks["broker"] = "down: not connected"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "service": spec.name, "checks": checks})
        return problem_response(503, "NOT_READY", f"not ready: {checks}", errors=[
            {"field": k, "code": "DOWN", "detail": v} for k, v in checks.items() if v != "ok"])

    @app.get("/metrics", tags=["probes"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in spec.routers:
        app.include_router(router)
    return app
