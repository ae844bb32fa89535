"""Outbox rows remember the broker epoch and place they were published to, and which consumer groups said they applied
them (shared.events.tables.add_broker_epochs, docs/events.md "Delivery").

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from shared.events.tables import add_broker_epochs, drop_broker_epochs

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "prepayment"


def upgrade() -> None:
    add_broker_epochs(op, SCHEMA)


def downgrade() -> None:
    drop_broker_epochs(op, SCHEMA)
