"""The settlement service."""

from pathlib import Path

from services.settlement.api import router
from services.settlement.handlers import handlers
from services.settlement.models import SCHEMA, events, metadata
from shared.service import ServiceSpec, create_app

spec = ServiceSpec(
    name=SCHEMA,
    title="yibao settlement",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
)
app = create_app(spec)
