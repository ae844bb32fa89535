"""Alembic environment of the eligibility service (schema `eligibility`)."""

from alembic import context

from services.eligibility.models import metadata
from shared.migrate import run_env

run_env(context, metadata)
