"""Tables of the settlement service (schema `settlement`).

Money is NUMERIC(14, 2); per-person-year accumulators are one JSONB row per (psn_no, year),
locked FOR UPDATE by every settlement and reversal of that person and year.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.events import event_tables
from shared.idempotency import idempotency_table
from shared.readmodels import institution_copy

SCHEMA = "settlement"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)
institutions = institution_copy(metadata)

MONEY = Numeric(14, 2)

catalogue = Table(
    "catalogue",
    metadata,
    Column("med_list_codg", String(64), primary_key=True),
    Column("med_list_name", String(200), nullable=False),
    Column("item_class", String(1), nullable=False),
    Column("preselfpay_prop", Numeric(5, 4)),
    Column("covid_only", Boolean, nullable=False, server_default="false"),
    Column("price_cap", MONEY),
    Column("account_excluded", Boolean, nullable=False, server_default="false"),
    Column("source", String(16), nullable=False, server_default="seed"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("valid_from", Date),  # a temporary entry: in force from, to (inclusive)
    Column("valid_to", Date),
    Column("category", String(16)),  # drug | examination | treatment | material (0007, supervision)
    Column("essential", Boolean, nullable=False, server_default="false"),  # 基本药物
    Column("watched", Boolean, nullable=False, server_default="false"),  # watched goods (price and sales watch)
)

visits = Table(
    "visits",
    metadata,
    Column("mdtrt_id", String(40), primary_key=True),
    Column("psn_no", String(40), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("med_type", String(2), nullable=False),
    Column("mdtrt_cert_type", String(2)),
    Column("begntime", DateTime(timezone=True), nullable=False),
    Column("begndate", Date, nullable=False),
    Column("endtime", DateTime(timezone=True)),
    Column("enddate", Date),
    Column("diagnoses", JSONB, nullable=False),
    Column("chronic_disease", String(64)),
    Column("referral_compliant", Boolean, nullable=False, server_default="true"),
    # open → settled (→ open again on reversal); merged: part of an admission; closed: pharmacy/declared
    Column("status", String(12), nullable=False, server_default="open"),
    Column("merged_into", String(40)),
    Column("setl_id", String(40)),
    Column("lines_version", Integer, nullable=False, server_default="0"),
    Column("rx_no", String(64)),
    Column("claim_id", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_visits_psn", "psn_no", "begndate"),
    Index("ix_visits_merged_into", "merged_into", postgresql_where=text("merged_into IS NOT NULL")),
)

fee_lines = Table(
    "fee_lines",
    metadata,
    Column("mdtrt_id", String(40), primary_key=True),
    Column("feedetl_sn", String(64), primary_key=True),
    Column("med_list_codg", String(64), nullable=False),
    Column("med_list_name", String(200), nullable=False, server_default=""),
    Column("item_class", String(1)),
    Column("pric", MONEY, nullable=False),
    Column("cnt", Numeric(14, 4), nullable=False),
    Column("det_item_fee_sumamt", MONEY),
    Column("preselfpay_prop", Numeric(5, 4)),
    Column("days_supply", Integer),
    Column("fee_ocur_time", DateTime(timezone=True)),
    Column("line_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

settlements = Table(
    "settlements",
    metadata,
    Column("setl_id", String(40), primary_key=True),
    Column("mdtrt_id", String(40), nullable=False),
    Column("psn_no", String(40), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("med_type", String(2), nullable=False),
    Column("year", SmallInteger, nullable=False),
    Column("status", String(10), nullable=False),  # settled | reversed
    Column("declared", Boolean, nullable=False, server_default="false"),
    Column("setl_time", DateTime(timezone=True), nullable=False),
    Column("setl_date", Date, nullable=False),
    Column("reversed_at", DateTime(timezone=True)),
    Column("rev_date", Date),
    Column("medfee_sumamt", MONEY, nullable=False),
    Column("fund_pay_sumamt", MONEY, nullable=False),
    Column("fin_subsidy_pay", MONEY, nullable=False),
    Column("psn_pay", MONEY, nullable=False),
    Column("acct_pay", MONEY, nullable=False),
    Column("acct_payer_psn_no", String(40)),
    Column("accumulator_delta", JSONB, nullable=False),
    Column("breakdown", JSONB, nullable=False),  # the answer of the settle call (with trace)
    Column("event", JSONB, nullable=False),  # the `settled` payload, reused by the reversal
    Column("subsidy", JSONB),
    Index("ux_settlements_live_visit", "mdtrt_id", unique=True, postgresql_where=text("status = 'settled'")),
    Index("ix_settlements_setl_date", "setl_date", "fixmedins_code"),
    Index("ix_settlements_rev_date", "rev_date", postgresql_where=text("rev_date IS NOT NULL")),
    Index("ix_settlements_psn", "psn_no", "year"),
    Index("ix_settlements_acct_payer", "acct_payer_psn_no", postgresql_where=text("acct_payer_psn_no IS NOT NULL")),
)

accumulators = Table(
    "accumulators",
    metadata,
    Column("psn_no", String(40), primary_key=True),
    Column("year", SmallInteger, primary_key=True),
    Column("amounts", JSONB, nullable=False),  # key → decimal string (engine keys)
    Column("version", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

accounts = Table(
    "accounts",
    metadata,
    Column("psn_no", String(40), primary_key=True),
    Column("balc", MONEY, nullable=False),  # CHECK (balc >= 0)
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_on", Date),  # closed (transfer out, death): pays nothing more
    Column("closure_reason", String(16)),
)

account_movements = Table(
    "account_movements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("psn_no", String(40), nullable=False),
    Column("kind", String(12), nullable=False),  # credit | payment | refund
    Column("amount", MONEY, nullable=False),  # signed: + credit/refund, − payment
    Column("period", String(32)),
    Column("setl_id", String(40)),
    Column("for_psn_no", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ux_account_credit_period", "psn_no", "period", unique=True, postgresql_where=text("kind = 'credit'")),
    Index("ix_account_movements_psn", "psn_no", "id"),
)

prescriptions = Table(
    "prescriptions",
    metadata,
    Column("rx_no", String(64), primary_key=True),
    Column("psn_no", String(40), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("valid_days", SmallInteger),
    Column("chronic_disease", String(64)),
    Column("items", JSONB, nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("used_setl_id", String(40)),
    Column("used_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_prescriptions_psn_no", "psn_no"),
)

claims = Table(
    "claims",
    metadata,
    Column("claim_id", String(40), primary_key=True),
    Column("psn_no", String(40), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("status", String(10), nullable=False),  # submitted | settled | rejected
    Column("reason", JSONB),
    Column("setl_id", String(40)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True)),
    Index("ix_claims_psn_no", "psn_no"),
)

account_credit_runs = Table(  # the monthly credit run, once per month, its answer kept
    "account_credit_runs",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("persons", Integer, nullable=False),
    Column("total", Numeric(18, 2), nullable=False),
    Column("answer", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

idempotency_keys = idempotency_table(metadata)

__all__ = [
    "SCHEMA",
    "metadata",
    "events",
    "institutions",
    "catalogue",
    "visits",
    "fee_lines",
    "settlements",
    "accumulators",
    "accounts",
    "account_movements",
    "prescriptions",
    "claims",
    "account_credit_runs",
    "idempotency_keys",
]
