"""Tables of the prepayment service (schema `prepayment`).

Created by migrations 0001 and 0002; 0003 versions budgets; 0004 gives idempotency keys the shared shape; 0006 books
account payments, the account fund's part of clearings and finance's subsidy payments.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.events.tables import event_tables
from shared.idempotency import idempotency_table
from shared.readmodels import institution_copy

SCHEMA = "prepayment"
metadata = MetaData(schema=SCHEMA)
events = event_tables(metadata)
institutions = institution_copy(metadata)

MONEY = Numeric(18, 2)

# The double-entry journal: append-only; a deferred trigger refuses an entry whose lines do not balance.
journal_entries = Table(
    "journal_entries",
    metadata,
    Column("entry_id", BigInteger, primary_key=True, autoincrement=True),
    Column("ref", String(120), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("fixmedins_code", String(32)),
    Column("setl_id", String(64)),
    Column("clearing_id", String(36)),
    Column("memo", String(200), nullable=False, server_default=""),
    Column("posted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_journal_entries_code", "fixmedins_code", "business_date"),
    Index("ix_journal_entries_clearing", "clearing_id"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("line_id", BigInteger, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, ForeignKey(f"{SCHEMA}.journal_entries.entry_id"), nullable=False),
    Column("account", String(96), nullable=False),
    Column("debit", MONEY, nullable=False, server_default="0"),
    Column("credit", MONEY, nullable=False, server_default="0"),
    Index("ix_journal_lines_entry", "entry_id"),
    Index("ix_journal_lines_account", "account"),
)

# What is known per settlement (from `settled` or the `original` of `settlement-reversed`).
settlements = Table(
    "settlements",
    metadata,
    Column("setl_id", String(64), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("known", Boolean, nullable=False),
    Column("setl_date", Date),
    Column("covid_status", String(16)),
    Column("hifp_pay", MONEY),
    Column("hifmi_pay", MONEY),
    Column("maf_pay", MONEY),
    Column("tilt_aid_pay", MONEY),
    Column("fund_pay_sumamt", MONEY),
    Column("fin_subsidy_pay", MONEY),
    Column("acct_pay", MONEY),  # NULL: stored before account payments were booked (learnt from a later event)
    Column("reversed_on", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_settlements_budget", "fixmedins_code", "setl_date"),
)

# What is known per COVID subsidy (from `subsidy-due`), and each finance level's part in it.
subsidies = Table(
    "subsidies",
    metadata,
    Column("setl_id", String(64), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("known", Boolean, nullable=False),
    Column("case_status", String(16)),
    Column("amount", MONEY),
    Column("advance_payer", String(16)),
    Column("setl_date", Date),
    Column("reversed_on", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

subsidy_shares = Table(
    "subsidy_shares",
    metadata,
    Column("setl_id", String(64), ForeignKey(f"{SCHEMA}.subsidies.setl_id"), primary_key=True),
    Column("payer", String(16), primary_key=True),
    Column("share", MONEY, nullable=False),
    Column("advanced", MONEY, nullable=False),
    Column("recoverable", MONEY, nullable=False),
    Index("ix_subsidy_shares_payer", "payer"),
)

prepayments = Table(
    "prepayments",
    metadata,
    Column("prepayment_id", String(36), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("status", String(16), nullable=False),
    Column("scheduled_on", Date),
    Column("disbursed_on", Date),
    Column("plan_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_prepayments_code", "fixmedins_code"),
    Index("ix_prepayments_due", "scheduled_on", postgresql_where=text("status = 'scheduled'")),
)

clearings = Table(
    "clearings",
    metadata,
    Column("clearing_id", String(36), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("carried_in", MONEY, nullable=False),
    Column("prepaid", MONEY, nullable=False),
    Column("fund_payable", MONEY, nullable=False),
    Column("net_due", MONEY, nullable=False),
    Column("paid", MONEY, nullable=False),
    Column("carried_out", MONEY, nullable=False),
    Column("offset", MONEY, nullable=False),
    Column("acct_carried_in", MONEY, nullable=False, server_default="0"),
    Column("acct_payable", MONEY, nullable=False, server_default="0"),
    Column("acct_paid", MONEY, nullable=False, server_default="0"),
    Column("acct_carried_out", MONEY, nullable=False, server_default="0"),
    Column("covid_fund_payable", MONEY, nullable=False, server_default="0"),  # of fund_payable: COVID settlements
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("fixmedins_code", "period_start", "period_end", name="uq_clearings_period"),
)

# Finance paying a hospital its COVID subsidy, or a level paying its share to the level that advanced it.
subsidy_payments = Table(
    "subsidy_payments",
    metadata,
    Column("ref", String(64), primary_key=True),
    Column("payer", String(16), nullable=False),
    Column("to_fixmedins_code", String(32)),
    Column("to_level", String(16)),
    Column("amount", MONEY, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("answer", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_subsidy_payments_payer", "payer"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("amount", MONEY, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),  # grows with every change; `budget-set` carries it
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

idempotency_keys = idempotency_table(metadata)
