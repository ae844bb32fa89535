"""Persons and what they are entitled to: person types, credentials, aid identities, chronic
qualifications, off-site registrations, family, employers with deferrals and arrears, COVID cases.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "eligibility"


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _updated() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _person_fk(column: str = "psn_no") -> sa.Column:
    return sa.Column(column, sa.String(32), sa.ForeignKey(f"{SCHEMA}.persons.psn_no"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "employers",
        sa.Column("emp_no", sa.String(32), primary_key=True),
        sa.Column("emp_name", sa.String(200)),
        sa.Column("admdvs", sa.String(6)),
        _created(),
        schema=SCHEMA,
    )
    op.create_table(
        "persons",
        sa.Column("psn_no", sa.String(32), primary_key=True),
        sa.Column("certno", sa.String(18), nullable=False, unique=True),
        sa.Column("psn_name", sa.String(100), nullable=False),
        sa.Column("gend", sa.String(1), nullable=False),
        sa.Column("brdy", sa.Date, nullable=False),
        sa.Column("insutype", sa.String(3), nullable=False),
        sa.Column("insuplc_admdvs", sa.String(6), nullable=False),
        sa.Column("emp_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.employers.emp_no")),
        sa.Column("contribution_base", sa.Numeric(14, 2)),
        sa.Column("card_no", sa.String(32), unique=True),
        sa.Column("ecert_hash", sa.String(64), unique=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_persons_emp_no", "persons", ["emp_no"], schema=SCHEMA)
    op.create_table(
        "psn_types",
        sa.Column("psn_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.persons.psn_no"), primary_key=True),
        sa.Column("effective_from", sa.Date, primary_key=True),
        sa.Column("psn_type", sa.String(16), nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_table(
        "aid_identities",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _person_fk(),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("lost_on", sa.Date),
        sa.Column("window_end", sa.Date),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_aid_identities_psn", "aid_identities", ["psn_no", "start_date"], schema=SCHEMA)
    op.create_table(
        "chronic_qualifications",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _person_fk(),
        sa.Column("disease", sa.String(32), nullable=False),
        sa.Column("two_disease_class", sa.SmallInteger),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column(
            "certified_by", sa.String(32), sa.ForeignKey(f"{SCHEMA}.institutions.fixmedins_code"), nullable=False
        ),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_chronic_qualifications_psn", "chronic_qualifications", ["psn_no", "start_date"], schema=SCHEMA)
    op.create_table(
        "offsite_registrations",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _person_fk(),
        sa.Column("mdtrtarea_admdvs", sa.String(6), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_offsite_registrations_psn", "offsite_registrations", ["psn_no", "start_date"], schema=SCHEMA)
    op.create_table(
        "family",
        sa.Column("psn_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.persons.psn_no"), primary_key=True),
        sa.Column("member_psn_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.persons.psn_no"), primary_key=True),
        sa.Column("relation", sa.String(8), nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_table(
        "deferrals",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("emp_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.employers.emp_no"), nullable=False),
        sa.Column("start_month", sa.Date, nullable=False),
        sa.Column("end_month", sa.Date, nullable=False),
        sa.Column("months", sa.SmallInteger, nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_index("ix_deferrals_emp", "deferrals", ["emp_no", "start_month"], schema=SCHEMA)
    op.create_table(
        "arrears",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("emp_no", sa.String(32), sa.ForeignKey(f"{SCHEMA}.employers.emp_no"), nullable=False),
        sa.Column("since_month", sa.Date, nullable=False),
        sa.Column("settled_on", sa.Date),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_arrears_emp", "arrears", ["emp_no", "since_month"], schema=SCHEMA)
    op.create_index(
        "ux_arrears_open",
        "arrears",
        ["emp_no"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("settled_on IS NULL"),
    )
    op.create_table(
        "covid_cases",
        sa.Column("case_id", sa.String(36), primary_key=True),
        _person_fk(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("diagnosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "fixmedins_code", sa.String(32), sa.ForeignKey(f"{SCHEMA}.institutions.fixmedins_code"), nullable=False
        ),
        sa.Column("diagnosis", sa.String(200), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        _created(),
        _updated(),
        schema=SCHEMA,
    )
    op.create_index("ix_covid_cases_psn", "covid_cases", ["psn_no"], schema=SCHEMA)
    op.create_index("ix_covid_cases_published", "covid_cases", ["published", "diagnosed_at"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "covid_cases",
        "arrears",
        "deferrals",
        "family",
        "offsite_registrations",
        "chronic_qualifications",
        "aid_identities",
        "psn_types",
        "persons",
        "employers",
    ):
        op.drop_table(table, schema=SCHEMA)
