"""Alembic environment of the settlement service (schema `settlement`)."""

from alembic import context

from services.settlement.models import metadata
from shared.migrate import run_env

run_env(context, metadata)
