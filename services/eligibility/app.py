"""The eligibility service: who is insured, on what terms, on which day."""

from pathlib import Path

from services.eligibility.api import router
from services.eligibility.models import SCHEMA, events, metadata
from shared.service import ServiceSpec, create_app

spec = ServiceSpec(
    name=SCHEMA,
    title="yibao eligibility",
    routers=[router],
    metadata=metadata,
    events=events,
    migrations_dir=Path(__file__).parent / "migrations",
)
app = create_app(spec)
