"""Idempotency keys take the shared shape (shared/idempotency.py): scoped by caller, the answer kept as text.

The old table scoped a key by endpoint (method and path) and kept the answer as JSONB. A stored key of that
shape cannot be mapped to the caller (role and institution) that sent it, so the stored keys are dropped, not
carried over: a request retried across this migration with a key used before it is done again as a new request
instead of being answered from the store. Downgrading drops the keys of the shared shape the same way.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.idempotency import create_idempotency_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
SCHEMA = "prepayment"


def upgrade() -> None:
    op.drop_table("idempotency_keys", schema=SCHEMA)
    create_idempotency_table(op, SCHEMA)


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.create_table(
        "idempotency_keys",
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("endpoint", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
