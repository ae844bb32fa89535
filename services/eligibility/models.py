"""Tables of the eligibility service (schema `eligibility`): the shape the migrations create.

The service's statements are plain SQL (shared.db); these definitions are Alembic's target metadata."""

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
    SmallInteger,
    String,
    Table,
    func,
    text,
)

from shared.events.tables import event_tables

SCHEMA = "eligibility"
metadata = MetaData(schema=SCHEMA)
event_tables(metadata)  # outbox, inbox, dead_letter


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())


institutions = Table(
    "institutions",
    metadata,
    Column("fixmedins_code", String(32), primary_key=True),
    Column("fixmedins_name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("level", SmallInteger),
    Column("affiliation", String(16), nullable=False),
    Column("admdvs", String(6), nullable=False),
    Column("suspended", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="1"),
    _created(),
    _updated(),
)

employers = Table(
    "employers",
    metadata,
    Column("emp_no", String(32), primary_key=True),
    Column("emp_name", String(200)),
    Column("admdvs", String(6)),
    _created(),
)

persons = Table(
    "persons",
    metadata,
    Column("psn_no", String(32), primary_key=True),
    Column("certno", String(18), nullable=False, unique=True),
    Column("psn_name", String(100), nullable=False),
    Column("gend", String(1), nullable=False),
    Column("brdy", Date, nullable=False),
    Column("insutype", String(3), nullable=False),
    Column("insuplc_admdvs", String(6), nullable=False),
    Column("emp_no", String(32), ForeignKey(employers.c.emp_no)),
    Column("contribution_base", Numeric(14, 2)),
    Column("card_no", String(32), unique=True),
    Column("ecert_hash", String(64), unique=True),  # sha256 of the 电子凭证 token; the token itself is not kept
    Column("version", Integer, nullable=False, server_default="1"),
    _created(),
    _updated(),
    Index("ix_persons_emp_no", "emp_no"),
)

psn_types = Table(
    "psn_types",
    metadata,
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), primary_key=True),
    Column("effective_from", Date, primary_key=True),
    Column("psn_type", String(16), nullable=False),
    _created(),
)

aid_identities = Table(
    "aid_identities",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), nullable=False),
    Column("category", String(16), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("lost_on", Date),
    Column("window_end", Date),  # end of the month of lost_on; null while held
    _created(),
    _updated(),
    Index("ix_aid_identities_psn", "psn_no", "start_date"),
)

chronic_qualifications = Table(
    "chronic_qualifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), nullable=False),
    Column("disease", String(32), nullable=False),
    Column("two_disease_class", SmallInteger),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("certified_by", String(32), ForeignKey(institutions.c.fixmedins_code), nullable=False),
    _created(),
    _updated(),
    Index("ix_chronic_qualifications_psn", "psn_no", "start_date"),
)

offsite_registrations = Table(
    "offsite_registrations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), nullable=False),
    Column("mdtrtarea_admdvs", String(6), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _created(),
    _updated(),
    Index("ix_offsite_registrations_psn", "psn_no", "start_date"),
)

family = Table(
    "family",
    metadata,
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), primary_key=True),
    Column("member_psn_no", String(32), ForeignKey(persons.c.psn_no), primary_key=True),
    Column("relation", String(8), nullable=False),  # what the member is to psn_no
    _created(),
)

deferrals = Table(
    "deferrals",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("emp_no", String(32), ForeignKey(employers.c.emp_no), nullable=False),
    Column("start_month", Date, nullable=False),  # first day of the first deferred month
    Column("end_month", Date, nullable=False),  # first day of the last deferred month
    Column("months", SmallInteger, nullable=False),
    _created(),
    Index("ix_deferrals_emp", "emp_no", "start_month"),
)

arrears = Table(
    "arrears",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("emp_no", String(32), ForeignKey(employers.c.emp_no), nullable=False),
    Column("since_month", Date, nullable=False),  # first day of the first unpaid month
    Column("settled_on", Date),
    _created(),
    _updated(),
    Index("ix_arrears_emp", "emp_no", "since_month"),
    Index("ux_arrears_open", "emp_no", unique=True, postgresql_where=text("settled_on IS NULL")),
)

covid_cases = Table(
    "covid_cases",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("psn_no", String(32), ForeignKey(persons.c.psn_no), nullable=False),
    Column("status", String(16), nullable=False),
    Column("diagnosed_at", DateTime(timezone=True), nullable=False),
    Column("fixmedins_code", String(32), ForeignKey(institutions.c.fixmedins_code), nullable=False),
    Column("diagnosis", String(200), nullable=False),
    Column("published", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="1"),
    _created(),
    _updated(),
    Index("ix_covid_cases_psn", "psn_no"),
    Index("ix_covid_cases_published", "published", "diagnosed_at"),
)
