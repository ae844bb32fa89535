"""The money after the settlement (issue 13): settlement moves say whether they are a retail purchase (定点药店购药)
and whose account paid for a family member (家庭共济), for the day's account totals and their reconciliation; an
index finds a person's inpatient stays (the admission date of the case ledger, 附件3).

Moves stored before carry neither (false, null): the `settled` events did not have the fields.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "reporting"


def upgrade() -> None:
    op.add_column(
        "settlement_moves",
        sa.Column("retail_purchase", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.add_column("settlement_moves", sa.Column("acct_payer_psn_no", sa.String(40)), schema=SCHEMA)
    op.create_index(
        "ix_settlement_moves_stays",
        "settlement_moves",
        ["psn_no"],
        schema=SCHEMA,
        postgresql_where=sa.text("med_type = '21'"),
    )


def downgrade() -> None:
    op.drop_index("ix_settlement_moves_stays", "settlement_moves", schema=SCHEMA)
    op.drop_column("settlement_moves", "acct_payer_psn_no", schema=SCHEMA)
    op.drop_column("settlement_moves", "retail_purchase", schema=SCHEMA)
