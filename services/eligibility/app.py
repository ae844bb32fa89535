"""The eligibility service: who is insured, on what terms, on which day."""

from pathlib import Path

from services.eligibility.api import router
from services.eligibility.models import SCHEMA
from shared.service import ServiceSpec, create_app

spec = ServiceSpec(
    name=SCHEMA,
    title="yibao eligibility",
    routers=[router],
    migrations_dir=Path(__file__).parent / "migrations",
)
app = create_app(spec)
