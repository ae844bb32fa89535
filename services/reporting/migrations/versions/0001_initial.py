"""Event tables and the local copy of institutions.

Revision ID: 0001
Revises:
"""

from alembic import op

from shared.events.tables import create_event_tables
from shared.readmodels import create_institution_copy

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "reporting"


def upgrade() -> None:
    create_event_tables(op, SCHEMA)
    create_institution_copy(op, SCHEMA)


def downgrade() -> None:
    for table in ("institutions", "dead_letter", "inbox", "outbox"):
        op.drop_table(table, schema=SCHEMA)
