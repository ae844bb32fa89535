"""The reporting service."""

from pathlib import Path

from services.reporting.api import router
from services.reporting.handlers import handlers
from services.reporting.models import SCHEMA, events, metadata
from shared.service import ServiceSpec, create_app

spec = ServiceSpec(
    name=SCHEMA,
    title="yibao reporting",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
)
app = create_app(spec)
