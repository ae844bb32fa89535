"""The money after the settlement (issue 13): account payments owed to institutions, finance's payments.

- settlements.acct_pay: the personal account's part of a settlement (own and family payments), booked as
  `account-payment:{setl_id}` (Dr account_fund:payments / Cr institution:{code}:acct_payable). Settlements stored
  before have it NULL (unknown): the settlement service announces those once more (its migration 0006) and the
  handler then books their account part, and its reversal when they were reversed.
- clearings: the account fund's part of each clearing (carried in, the period's, paid, carried out), and the part
  of the period's fund_payable that COVID settlements make (COVID costs are accounted separately, DOMAIN §6).
- subsidy_payments: finance paying a hospital its COVID subsidy, or a level paying its share to the level that
  advanced it (`POST /v1/subsidy-payments`, one row per `ref`).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
SCHEMA = "prepayment"
MONEY = sa.Numeric(18, 2)
ACCT_COLUMNS = ("acct_carried_in", "acct_payable", "acct_paid", "acct_carried_out", "covid_fund_payable")


def upgrade() -> None:
    op.add_column("settlements", sa.Column("acct_pay", MONEY), schema=SCHEMA)
    for name in ACCT_COLUMNS:
        op.add_column("clearings", sa.Column(name, MONEY, nullable=False, server_default="0"), schema=SCHEMA)
    op.create_check_constraint(
        "ck_clearings_acct_signs", "clearings", "acct_paid >= 0 AND acct_carried_out <= 0", schema=SCHEMA
    )
    op.create_table(
        "subsidy_payments",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("payer", sa.String(16), nullable=False),
        sa.Column("to_fixmedins_code", sa.String(32)),
        sa.Column("to_level", sa.String(16)),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("answer", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount > 0", name="ck_subsidy_payments_amount_positive"),
        sa.CheckConstraint("(to_fixmedins_code IS NULL) <> (to_level IS NULL)", name="ck_subsidy_payments_receiver"),
        sa.CheckConstraint("to_level IS NULL OR to_level <> payer", name="ck_subsidy_payments_not_to_itself"),
        schema=SCHEMA,
    )
    op.create_index("ix_subsidy_payments_payer", "subsidy_payments", ["payer"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("subsidy_payments", schema=SCHEMA)
    op.drop_constraint("ck_clearings_acct_signs", "clearings", schema=SCHEMA)
    for name in ACCT_COLUMNS:
        op.drop_column("clearings", name, schema=SCHEMA)
    op.drop_column("settlements", "acct_pay", schema=SCHEMA)
