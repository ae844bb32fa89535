"""Alembic environment of the prepayment service (schema `prepayment`)."""

from alembic import context

from services.prepayment.models import metadata
from shared.migrate import run_env

run_env(context, metadata)
