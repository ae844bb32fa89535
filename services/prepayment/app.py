"""The prepayment service."""

from pathlib import Path

from services.prepayment.api import router
from services.prepayment.handlers import handlers
from services.prepayment.models import SCHEMA, events, metadata
from shared.service import ServiceSpec, create_app

spec = ServiceSpec(
    name=SCHEMA,
    title="yibao prepayment",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
)
app = create_app(spec)
