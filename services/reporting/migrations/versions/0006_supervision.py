"""Supervision (issue 16, DOMAIN §13): the read models the rules read, and the alerts and filings the service keeps.

- settlement_moves: the identities the person held (`aid_categories`, from `settled`) and the amounts of the lines by
  what the catalogue says of their codes (`exam_amt`, `drug_amt`, `essential_drug_amt`, signed like the others);
  indexes by person and by settlement date. Moves stored before carry null / 0: their events had no lines.
- settlement_lines: each settlement's fee lines (`settled` `lines`), indexed for the rules across settlements and
  the watched goods.
- alerts: one per rule, subject and window (a unique key), with its facts and the settlements behind it.
- filings: one filing record per report, day and pooling area.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
SCHEMA = "reporting"
AMOUNT = sa.Numeric(16, 2)
LINE_AMOUNTS = ("exam_amt", "drug_amt", "essential_drug_amt")


def upgrade() -> None:
    op.add_column("settlement_moves", sa.Column("aid_categories", ARRAY(sa.String(16))), schema=SCHEMA)
    for name in LINE_AMOUNTS:
        op.add_column("settlement_moves", sa.Column(name, AMOUNT, nullable=False, server_default="0"), schema=SCHEMA)
    op.create_index("ix_settlement_moves_person", "settlement_moves", ["psn_no", "setl_date"], schema=SCHEMA)
    op.create_index("ix_settlement_moves_setl_date", "settlement_moves", ["setl_date"], schema=SCHEMA)

    op.create_table(
        "settlement_lines",
        sa.Column("setl_id", sa.String(40), primary_key=True),
        sa.Column("feedetl_sn", sa.String(130), primary_key=True),
        sa.Column("psn_no", sa.String(40), nullable=False),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("fixmedins_kind", sa.String(16)),
        sa.Column("fixmedins_admdvs", sa.String(6)),
        sa.Column("med_type", sa.String(4), nullable=False),
        sa.Column("retail_purchase", sa.Boolean, nullable=False),
        sa.Column("setl_date", sa.Date, nullable=False),
        sa.Column("fee_day", sa.Date, nullable=False),
        sa.Column("med_list_codg", sa.String(64), nullable=False),
        sa.Column("med_list_name", sa.String(200), nullable=False),
        sa.Column("item_class", sa.String(1), nullable=False),
        sa.Column("category", sa.String(16)),
        sa.Column("essential", sa.Boolean, nullable=False),
        sa.Column("watched", sa.Boolean, nullable=False),
        sa.Column("pric", sa.Numeric(14, 2), nullable=False),
        sa.Column("cnt", sa.Numeric(14, 4), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("days_supply", sa.Integer),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_settlement_lines_person_code", "settlement_lines", ["psn_no", "med_list_codg", "fee_day"], schema=SCHEMA
    )
    op.create_index(
        "ix_settlement_lines_watched",
        "settlement_lines",
        ["med_list_codg", "fixmedins_code", "fee_day"],
        schema=SCHEMA,
        postgresql_where=sa.text("watched"),
    )
    op.create_index(
        "ix_settlement_lines_watched_day",
        "settlement_lines",
        ["fee_day"],
        schema=SCHEMA,
        postgresql_where=sa.text("watched"),
    )

    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(40), primary_key=True),
        sa.Column("alert_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(48), nullable=False),
        sa.Column("rule_version", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("window_start", sa.Date, nullable=False),
        sa.Column("window_end", sa.Date, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("psn_no", sa.String(40)),
        sa.Column("fixmedins_code", sa.String(32)),
        sa.Column("admdvs", sa.String(6)),
        sa.Column("facts", JSONB, nullable=False),
        sa.Column("setl_ids", ARRAY(sa.String(40)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("resolution", sa.String(16)),
        sa.Column("note", sa.Text),
        sa.Column("amount", AMOUNT),
        sa.Column("resolved_by", sa.String(16)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint("alert_key", name="ux_alerts_key"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_alerts_status"),
        sa.CheckConstraint("kind IN ('high_cost', 'price', 'fraud', 'indicator', 'filing')", name="ck_alerts_kind"),
        schema=SCHEMA,
    )
    op.create_index("ix_alerts_status", "alerts", ["status", "raised_at"], schema=SCHEMA)
    op.create_index(
        "ix_alerts_psn", "alerts", ["psn_no"], schema=SCHEMA, postgresql_where=sa.text("psn_no IS NOT NULL")
    )
    op.create_index(
        "ix_alerts_institution",
        "alerts",
        ["fixmedins_code"],
        schema=SCHEMA,
        postgresql_where=sa.text("fixmedins_code IS NOT NULL"),
    )
    op.create_index("ix_alerts_admdvs", "alerts", ["admdvs"], schema=SCHEMA)
    op.create_index("ix_alerts_rule_subject", "alerts", ["rule", "subject", "window_end"], schema=SCHEMA)
    op.create_index("ix_alerts_setl_ids", "alerts", ["setl_ids"], schema=SCHEMA, postgresql_using="gin")

    op.create_table(
        "filings",
        sa.Column("report", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("admdvs", sa.String(6), primary_key=True),
        sa.Column("filled_by", sa.String(100), nullable=False),
        sa.Column("approved_by", sa.String(100), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_by_role", sa.String(16), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("filings", schema=SCHEMA)
    op.drop_table("alerts", schema=SCHEMA)
    op.drop_table("settlement_lines", schema=SCHEMA)
    op.drop_index("ix_settlement_moves_setl_date", "settlement_moves", schema=SCHEMA)
    op.drop_index("ix_settlement_moves_person", "settlement_moves", schema=SCHEMA)
    for name in reversed(LINE_AMOUNTS):
        op.drop_column("settlement_moves", name, schema=SCHEMA)
    op.drop_column("settlement_moves", "aid_categories", schema=SCHEMA)
