"""Alembic environment of the reporting service (schema `reporting`)."""

from alembic import context

from services.reporting.models import metadata
from shared.migrate import run_env

run_env(context, metadata)
