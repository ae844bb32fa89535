"""Read model of the global budgets (budget-set): the newest version per institution and year.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
SCHEMA = "reporting"
AMOUNT = sa.Numeric(16, 2)


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("budgets", schema=SCHEMA)
