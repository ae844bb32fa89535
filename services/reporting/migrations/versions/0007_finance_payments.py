"""Finance's subsidy payments (`subsidy-paid`, from the prepayment service): one row per payment `ref`, for the
daily report's `finance_payments` and their reconciliation with the prepayment service.

Payments booked before the event existed were never announced: the table starts empty, and the reconciliation of
their days shows what reporting lacks.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
SCHEMA = "reporting"
AMOUNT = sa.Numeric(16, 2)


def upgrade() -> None:
    op.create_table(
        "finance_payments",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("payer", sa.String(16), nullable=False),
        sa.Column("to_fixmedins_code", sa.String(32)),
        sa.Column("to_level", sa.String(16)),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("admdvs", sa.String(6)),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_finance_payments_paid_on", "finance_payments", ["paid_on"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_finance_payments_paid_on", "finance_payments", schema=SCHEMA)
    op.drop_table("finance_payments", schema=SCHEMA)
