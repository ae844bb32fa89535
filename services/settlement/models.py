"""Tables of the settlement service (schema `settlement`).

Money is NUMERIC(14, 2); per-person-year accumulators are one JSONB row per (psn_no, year),
locked FOR UPDATE by every settlement and reversal of that person and year.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    func,
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
    "idempotency_keys",
]
