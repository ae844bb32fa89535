"""Tables of the reporting service (schema `reporting`): read models fed only by events (migrations 0001-0005, 0007),
and supervision's own state (0006): alerts and filing records.

The definitions are for Alembic; the service reaches them through shared.db with unqualified names, so the same
handlers and report queries run against a scratch schema whose search_path comes first (see replay.py).
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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.events.tables import event_tables
from shared.readmodels import institution_copy

SCHEMA = "reporting"
metadata = MetaData(schema=SCHEMA)
event_tables(metadata)  # outbox, inbox, dead_letter
institutions = institution_copy(metadata)

AMOUNT = Numeric(16, 2)

# The money fields of a `settled` payload kept for the reports (docs/events.md).
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


# What the lines of a settlement add up to, by what the catalogue says of their codes (institution indicators).
LINE_AMOUNTS = ("exam_amt", "drug_amt", "essential_drug_amt")


def _move_columns() -> list[Column]:
    return [
        Column("setl_id", String(40), primary_key=True),
        Column("kind", String(8), primary_key=True),  # settle | reverse
        Column("sign", SmallInteger, nullable=False),  # +1 settle, -1 reverse (a settlement counted)
        Column("day", Date, nullable=False),  # business day of the move: setl_date or rev_date
        Column("at", DateTime(timezone=True), nullable=False),  # setl_time or reversed_at
        Column("setl_date", Date, nullable=False),  # business day of the original settlement
        Column("psn_no", String(40), nullable=False),
        Column("insutype", String(8), nullable=False),
        Column("psn_type", String(16)),
        Column("insuplc_admdvs", String(6)),
        Column("origin", String(16), nullable=False),
        Column("fixmedins_code", String(32), nullable=False),
        Column("fixmedins_kind", String(16)),
        Column("fixmedins_level", SmallInteger),
        Column("fixmedins_affiliation", String(16)),
        Column("fixmedins_admdvs", String(6)),
        Column("med_type", String(4), nullable=False),
        Column("chronic_disease", String(64)),
        Column("two_disease", String(16)),
        Column("aid_category", String(32)),
        Column("covid_status", String(16)),
        Column("offsite", Boolean, nullable=False),
        Column("declared", Boolean, nullable=False),
        Column("begndate", Date),
        Column("enddate", Date),
        *[Column(name, AMOUNT, nullable=False) for name in MOVE_AMOUNTS],  # signed: negative on a reversal
        Column("retail_purchase", Boolean, nullable=False, server_default="false"),  # 定点药店购药 (0005)
        Column("acct_payer_psn_no", String(40)),  # a family member's account paid (家庭共济) (0005)
        # supervision (0006): the identities the person held, and the lines' amounts by what the catalogue says
        Column("aid_categories", ARRAY(String(16))),
        *[Column(name, AMOUNT, nullable=False, server_default="0") for name in LINE_AMOUNTS],  # signed
    ]


# One row per settlement and one per reversal; reports sum them by `day`, so a reversal counts
# negative on its own business day and consecutive days neither overlap nor leave gaps.
settlement_moves = Table(
    "settlement_moves",
    metadata,
    *_move_columns(),
    Index("ix_settlement_moves_day", "day"),
    Index("ix_settlement_moves_stays", "psn_no", postgresql_where="med_type = '21'"),
    Index("ix_settlement_moves_person", "psn_no", "setl_date"),
    Index("ix_settlement_moves_setl_date", "setl_date"),
)

# The fee lines of each settlement (`settled`, docs/events.md `lines`), for the rules across settlements and the
# price and sales watch. A reversed settlement's lines stay: the rules leave out those whose settlement has a
# `reverse` move. `fee_day` is the business day of fee_ocur_time (else the visit's day).
settlement_lines = Table(
    "settlement_lines",
    metadata,
    Column("setl_id", String(40), primary_key=True),
    Column("feedetl_sn", String(130), primary_key=True),
    Column("psn_no", String(40), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("fixmedins_kind", String(16)),
    Column("fixmedins_admdvs", String(6)),
    Column("med_type", String(4), nullable=False),
    Column("retail_purchase", Boolean, nullable=False),
    Column("setl_date", Date, nullable=False),
    Column("fee_day", Date, nullable=False),
    Column("med_list_codg", String(64), nullable=False),
    Column("med_list_name", String(200), nullable=False),
    Column("item_class", String(1), nullable=False),
    Column("category", String(16)),
    Column("essential", Boolean, nullable=False),
    Column("watched", Boolean, nullable=False),
    Column("pric", Numeric(14, 2), nullable=False),
    Column("cnt", Numeric(14, 4), nullable=False),
    Column("amount", AMOUNT, nullable=False),
    Column("days_supply", Integer),
    Index("ix_settlement_lines_person_code", "psn_no", "med_list_codg", "fee_day"),
    Index("ix_settlement_lines_watched", "med_list_codg", "fixmedins_code", "fee_day", postgresql_where="watched"),
    Index("ix_settlement_lines_watched_day", "fee_day", postgresql_where="watched"),
)

# The newest version of each COVID case (covid-case-registered), personal fields for 附件3.
covid_cases = Table(
    "covid_cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("psn_no", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("diagnosed_at", DateTime(timezone=True), nullable=False),
    Column("fixmedins_code", String(32), nullable=False),
    Column("diagnosis", String(200), nullable=False),
    Column("published", Boolean, nullable=False),
    Column("psn_name", String(100)),
    Column("gend", String(4)),
    Column("brdy", Date),
    Column("certno", String(32)),
    Column("insutype", String(8)),
    Column("insuplc_admdvs", String(6)),
    Index("ix_covid_cases_diagnosed_at", "diagnosed_at"),
)

# Disbursed prepayments (prepayment-disbursed); `effective_at` is the moment the 17:00 cutoff compares.
prepayments = Table(
    "prepayments",
    metadata,
    Column("prepayment_id", String(64), primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("amount", AMOUNT, nullable=False),
    Column("disbursed_on", Date, nullable=False),
    Column("scheduled_on", Date),
    Column("admdvs", String(6), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("effective_at", DateTime(timezone=True), nullable=False),
)

# Finance subsidies of COVID settlements (subsidy-due); a reversal row nets its settlement out.
subsidies = Table(
    "subsidies",
    metadata,
    Column("setl_id", String(40), primary_key=True),
    Column("reversal", Boolean, primary_key=True),
    Column("fixmedins_code", String(32), nullable=False),
    Column("psn_no", String(40)),
    Column("case_status", String(16), nullable=False),
    Column("advance_payer", String(16), nullable=False),
    Column("amount", AMOUNT, nullable=False),
    Column("shares", JSONB, nullable=False),
    Column("setl_date", Date),
)

# Finance's payments of COVID subsidies (subsidy-paid), one per `ref`: to a hospital (`to_fixmedins_code`, `admdvs` its
# pooling area) or a level's share to the level that advanced it (`to_level`, no pooling area).
finance_payments = Table(
    "finance_payments",
    metadata,
    Column("ref", String(64), primary_key=True),
    Column("payer", String(16), nullable=False),
    Column("to_fixmedins_code", String(32)),
    Column("to_level", String(16)),
    Column("amount", AMOUNT, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("admdvs", String(6)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_finance_payments_paid_on", "paid_on"),
)

# The newest version of each person (person-changed): no name, no ID number.
persons = Table(
    "persons",
    metadata,
    Column("psn_no", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("insutype", String(8)),
    Column("psn_type", String(16)),
    Column("insuplc_admdvs", String(6)),
    Column("gend", String(4)),
    Column("brdy", Date),
    Column("emp_no", String(64)),
)

# Declared claims submitted (claim-submitted), for the dashboard.
claims = Table(
    "claims",
    metadata,
    Column("claim_id", String(64), primary_key=True),
    Column("psn_no", String(40)),
    Column("fixmedins_code", String(32)),
    Column("submitted_at", DateTime(timezone=True)),
)

# The newest version of each institution's global budget for a year (budget-set).
budgets = Table(
    "budgets",
    metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("amount", AMOUNT, nullable=False),
    Column("version", Integer, nullable=False),
)

# Supervision alerts (DOMAIN §13): one row per rule, subject and window (`alert_key`), so the same facts never raise
# twice. `setl_ids`: the settlements behind it (a reversal of one of them makes the rule look again).
alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(40), primary_key=True),
    Column("alert_key", String(300), nullable=False),
    Column("kind", String(16), nullable=False),  # high_cost | price | fraud | indicator | filing
    Column("rule", String(48), nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("status", String(10), nullable=False),  # open | resolved
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("raised_count", Integer, nullable=False, server_default="1"),  # raised again after a withdrawal
    Column("psn_no", String(40)),
    Column("fixmedins_code", String(32)),
    Column("admdvs", String(6)),
    Column("facts", JSONB, nullable=False),
    Column("setl_ids", ARRAY(String(40)), nullable=False, server_default=text("'{}'")),
    Column("resolution", String(16)),  # helped | confirmed | dismissed | corrected | referred | withdrawn | filed
    Column("note", Text),
    Column("amount", AMOUNT),  # the help given (化解), when the resolution says one
    Column("resolved_by", String(16)),  # the role that resolved it, or `system`
    Column("resolved_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("alert_key", name="ux_alerts_key"),
    Index("ix_alerts_status", "status", "raised_at"),
    Index("ix_alerts_psn", "psn_no", postgresql_where="psn_no IS NOT NULL"),
    Index("ix_alerts_institution", "fixmedins_code", postgresql_where="fixmedins_code IS NOT NULL"),
    Index("ix_alerts_admdvs", "admdvs"),
    Index("ix_alerts_rule_subject", "rule", "subject", "window_end"),
    Index("ix_alerts_setl_ids", "setl_ids", postgresql_using="gin"),
)

# County filing: one record per report, day and pooling area (who filled it in, who approved, when).
filings = Table(
    "filings",
    metadata,
    Column("report", String(16), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("admdvs", String(6), primary_key=True),
    Column("filled_by", String(100), nullable=False),
    Column("approved_by", String(100), nullable=False),
    Column("note", Text),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("filed_by_role", String(16), nullable=False),
)
