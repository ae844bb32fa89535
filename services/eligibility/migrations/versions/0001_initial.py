"""Event tables and institutions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.events.tables import create_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "eligibility"


def upgrade() -> None:
    create_event_tables(op, SCHEMA)
    op.create_table(
        "institutions",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("fixmedins_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.SmallInteger),
        sa.Column("affiliation", sa.String(16), nullable=False),
        sa.Column("admdvs", sa.String(6), nullable=False),
        sa.Column("suspended", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("institutions", "dead_letter", "inbox", "outbox"):
        op.drop_table(table, schema=SCHEMA)
