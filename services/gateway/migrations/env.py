"""Alembic environment of the national-platform gateway (schema `gateway`)."""

from alembic import context

from services.gateway.models import metadata
from shared.migrate import run_env

run_env(context, metadata)
