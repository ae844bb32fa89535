"""Catalogue, visits, fee lines, settlements, accumulators, accounts, prescriptions, claims, idempotency keys.

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
SCHEMA = "settlement"
MONEY = sa.Numeric(14, 2)


def _now():
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "catalogue",
        sa.Column("med_list_codg", sa.String(64), primary_key=True),
        sa.Column("med_list_name", sa.String(200), nullable=False),
        sa.Column("item_class", sa.String(1), nullable=False),
        sa.Column("preselfpay_prop", sa.Numeric(5, 4)),
        sa.Column("covid_only", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("price_cap", MONEY),
        sa.Column("account_excluded", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("source", sa.String(16), nullable=False, server_default="seed"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("item_class in ('A', 'B', 'C')", name="ck_catalogue_class"),
        schema=SCHEMA,
    )
    op.create_table(
        "visits",
        sa.Column("mdtrt_id", sa.String(40), primary_key=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("med_type", sa.String(2), nullable=False),
        sa.Column("mdtrt_cert_type", sa.String(2)),
        sa.Column("begntime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("begndate", sa.Date, nullable=False),
        sa.Column("endtime", sa.DateTime(timezone=True)),
        sa.Column("enddate", sa.Date),
        sa.Column("diagnoses", JSONB, nullable=False),
        sa.Column("chronic_disease", sa.String(64)),
        sa.Column("referral_compliant", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("status", sa.String(12), nullable=False, server_default="open"),
        sa.Column("merged_into", sa.String(40)),
        sa.Column("setl_id", sa.String(40)),
        sa.Column("lines_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rx_no", sa.String(64)),
        sa.Column("claim_id", sa.String(40)),
        _now(),
        sa.CheckConstraint("status in ('open', 'settled', 'merged', 'closed')", name="ck_visits_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_visits_psn", "visits", ["psn_no", "begndate"], schema=SCHEMA)
    op.create_index(
        "ix_visits_merged_into",
        "visits",
        ["merged_into"],
        schema=SCHEMA,
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.create_table(
        "fee_lines",
        sa.Column("mdtrt_id", sa.String(40), primary_key=True),
        sa.Column("feedetl_sn", sa.String(64), primary_key=True),
        sa.Column("med_list_codg", sa.String(64), nullable=False),
        sa.Column("med_list_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("item_class", sa.String(1)),
        sa.Column("pric", MONEY, nullable=False),
        sa.Column("cnt", sa.Numeric(14, 4), nullable=False),
        sa.Column("det_item_fee_sumamt", MONEY),
        sa.Column("preselfpay_prop", sa.Numeric(5, 4)),
        sa.Column("days_supply", sa.Integer),
        sa.Column("fee_ocur_time", sa.DateTime(timezone=True)),
        sa.Column("line_hash", sa.String(64), nullable=False),
        _now(),
        schema=SCHEMA,
    )
    op.create_table(
        "settlements",
        sa.Column("setl_id", sa.String(40), primary_key=True),
        sa.Column("mdtrt_id", sa.String(40), nullable=False),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("med_type", sa.String(2), nullable=False),
        sa.Column("year", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("declared", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("setl_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("setl_date", sa.Date, nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True)),
        sa.Column("rev_date", sa.Date),
        sa.Column("medfee_sumamt", MONEY, nullable=False),
        sa.Column("fund_pay_sumamt", MONEY, nullable=False),
        sa.Column("fin_subsidy_pay", MONEY, nullable=False),
        sa.Column("psn_pay", MONEY, nullable=False),
        sa.Column("acct_pay", MONEY, nullable=False),
        sa.Column("acct_payer_psn_no", sa.String(40)),
        sa.Column("accumulator_delta", JSONB, nullable=False),
        sa.Column("breakdown", JSONB, nullable=False),
        sa.Column("event", JSONB, nullable=False),
        sa.Column("subsidy", JSONB),
        sa.CheckConstraint("status in ('settled', 'reversed')", name="ck_settlements_status"),
        sa.CheckConstraint(
            "medfee_sumamt >= 0 and fund_pay_sumamt >= 0 and fin_subsidy_pay >= 0 and psn_pay >= 0 and acct_pay >= 0",
            name="ck_settlements_amounts",
        ),
        schema=SCHEMA,
    )
    # At most one live settlement per visit: the database says ALREADY_SETTLED even if two race.
    op.create_index(
        "ux_settlements_live_visit",
        "settlements",
        ["mdtrt_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'settled'"),
    )
    op.create_index("ix_settlements_setl_date", "settlements", ["setl_date", "fixmedins_code"], schema=SCHEMA)
    op.create_index(
        "ix_settlements_rev_date",
        "settlements",
        ["rev_date"],
        schema=SCHEMA,
        postgresql_where=sa.text("rev_date IS NOT NULL"),
    )
    op.create_index("ix_settlements_psn", "settlements", ["psn_no", "year"], schema=SCHEMA)
    op.create_table(
        "accumulators",
        sa.Column("psn_no", sa.String(40), primary_key=True),
        sa.Column("year", sa.SmallInteger, primary_key=True),
        sa.Column("amounts", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "accounts",
        sa.Column("psn_no", sa.String(40), primary_key=True),
        sa.Column("balc", MONEY, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("balc >= 0", name="ck_accounts_never_negative"),
        schema=SCHEMA,
    )
    op.create_table(
        "account_movements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("period", sa.String(32)),
        sa.Column("setl_id", sa.String(40)),
        sa.Column("for_psn_no", sa.String(40)),
        _now(),
        schema=SCHEMA,
    )
    op.create_index(
        "ux_account_credit_period",
        "account_movements",
        ["psn_no", "period"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("kind = 'credit'"),
    )
    op.create_table(
        "prescriptions",
        sa.Column("rx_no", sa.String(64), primary_key=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("valid_days", sa.SmallInteger),
        sa.Column("chronic_disease", sa.String(64)),
        sa.Column("items", JSONB, nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("used_setl_id", sa.String(40)),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        _now(),
        schema=SCHEMA,
    )
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.String(40), primary_key=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", JSONB),
        sa.Column("setl_id", sa.String(40)),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger),
        sa.Column("response", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "claims",
        "prescriptions",
        "account_movements",
        "accounts",
        "accumulators",
        "settlements",
        "fee_lines",
        "visits",
        "catalogue",
    ):
        op.drop_table(table, schema=SCHEMA)
