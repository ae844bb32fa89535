"""Budgets get a version, and budgets set before `budget-set` existed are announced once.

Every change of an institution's budget for a year raises its `version`; the `budget-set` event
carries it so that consumers keep the newest whatever the arrival order. Budgets already stored
get version 1 and a `budget-set` row in the outbox (the relay publishes it like any other), so the
reporting service learns them without anyone setting them again.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
SCHEMA = "prepayment"


def upgrade() -> None:
    op.add_column("budgets", sa.Column("version", sa.Integer, nullable=False, server_default="1"), schema=SCHEMA)
    op.create_check_constraint("ck_budgets_version_positive", "budgets", "version > 0", schema=SCHEMA)
    # the envelope of shared/events/envelope.py, written in SQL: a migration does not import the code it precedes
    op.execute(f"""
        INSERT INTO {SCHEMA}.outbox (event_id, topic, key, type, envelope)
        SELECT b.id, 'budget-set', b.fixmedins_code, 'budget-set', jsonb_build_object(
                   'event_id', b.id::text, 'type', 'budget-set', 'version', 1,
                   'occurred_at', to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+08:00',
                   'producer', 'prepayment', 'key', b.fixmedins_code,
                   'payload', jsonb_build_object('fixmedins_code', b.fixmedins_code, 'year', b.year,
                                                 'amount', b.amount::text, 'version', b.version))
          FROM (SELECT gen_random_uuid() AS id, fixmedins_code, year, amount, version
                  FROM {SCHEMA}.budgets ORDER BY fixmedins_code, year) b
    """)


def downgrade() -> None:
    op.drop_constraint("ck_budgets_version_positive", "budgets", schema=SCHEMA)
    op.drop_column("budgets", "version", schema=SCHEMA)
