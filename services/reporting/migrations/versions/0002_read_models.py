"""Read models of the reports: settlement moves, COVID cases, prepayments, subsidies, persons, claims.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "reporting"
AMOUNT = sa.Numeric(16, 2)
MOVE_AMOUNTS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "preselfpay_amt",
    "inscp_scp_amt",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "tilt_aid_pay",
    "fin_subsidy_pay",
    "fund_pay_sumamt",
    "psn_pay",
    "acct_pay",
    "psn_cash_pay",
)


def upgrade() -> None:
    op.create_table(
        "settlement_moves",
        sa.Column("setl_id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("sign", sa.SmallInteger, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("setl_date", sa.Date, nullable=False),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("insutype", sa.String(8), nullable=False),
        sa.Column("psn_type", sa.String(16)),
        sa.Column("insuplc_admdvs", sa.String(6)),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("fixmedins_kind", sa.String(16)),
        sa.Column("fixmedins_level", sa.SmallInteger),
        sa.Column("fixmedins_affiliation", sa.String(16)),
        sa.Column("fixmedins_admdvs", sa.String(6)),
        sa.Column("med_type", sa.String(4), nullable=False),
        sa.Column("chronic_disease", sa.String(64)),
        sa.Column("two_disease", sa.String(16)),
        sa.Column("aid_category", sa.String(32)),
        sa.Column("covid_status", sa.String(16)),
        sa.Column("offsite", sa.Boolean, nullable=False),
        sa.Column("declared", sa.Boolean, nullable=False),
        sa.Column("begndate", sa.Date),
        sa.Column("enddate", sa.Date),
        *[sa.Column(name, AMOUNT, nullable=False) for name in MOVE_AMOUNTS],
        schema=SCHEMA,
    )
    op.create_index("ix_settlement_moves_day", "settlement_moves", ["day"], schema=SCHEMA)
    op.create_table(
        "covid_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("diagnosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("diagnosis", sa.String(200), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.Column("psn_name", sa.String(100)),
        sa.Column("gend", sa.String(4)),
        sa.Column("brdy", sa.Date),
        sa.Column("certno", sa.String(32)),
        sa.Column("insutype", sa.String(8)),
        sa.Column("insuplc_admdvs", sa.String(6)),
        schema=SCHEMA,
    )
    op.create_index("ix_covid_cases_diagnosed_at", "covid_cases", ["diagnosed_at"], schema=SCHEMA)
    op.create_table(
        "prepayments",
        sa.Column("prepayment_id", sa.String(64), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("disbursed_on", sa.Date, nullable=False),
        sa.Column("scheduled_on", sa.Date),
        sa.Column("admdvs", sa.String(6), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "subsidies",
        sa.Column("setl_id", sa.String(40), primary_key=True),
        sa.Column("reversal", sa.Boolean, primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("psn_no", sa.String(40)),
        sa.Column("case_status", sa.String(16), nullable=False),
        sa.Column("advance_payer", sa.String(16), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("shares", JSONB, nullable=False),
        sa.Column("setl_date", sa.Date),
        schema=SCHEMA,
    )
    op.create_table(
        "persons",
        sa.Column("psn_no", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("insutype", sa.String(8)),
        sa.Column("psn_type", sa.String(16)),
        sa.Column("insuplc_admdvs", sa.String(6)),
        sa.Column("gend", sa.String(4)),
        sa.Column("brdy", sa.Date),
        sa.Column("emp_no", sa.String(64)),
        schema=SCHEMA,
    )
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.String(64), primary_key=True),
        sa.Column("psn_no", sa.String(40)),
        sa.Column("fixmedins_code", sa.String(32)),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("claims", "persons", "subsidies", "prepayments", "covid_cases", "settlement_moves"):
        op.drop_table(table, schema=SCHEMA)
