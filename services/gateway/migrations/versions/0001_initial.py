"""The gateway's tables: message log, nonces, sign-ins, persons asked about, fee lines by batch.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("msgid", sa.String(40), primary_key=True),
        sa.Column("infno", sa.String(8), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text),
        sa.Column("psn_no", sa.String(40)),
        sa.Column("mdtrt_id", sa.String(40)),
        sa.Column("setl_id", sa.String(40)),
        sa.Column("reversed_by", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_messages_setl_id", "messages", ["setl_id"], schema=SCHEMA, postgresql_where=sa.text("setl_id IS NOT NULL")
    )
    op.create_index(
        "ix_messages_mdtrt_id",
        "messages",
        ["mdtrt_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("mdtrt_id IS NOT NULL"),
    )
    op.create_index("ix_messages_created_at", "messages", ["created_at"], schema=SCHEMA)
    op.create_table(
        "nonces",
        sa.Column("access_key", sa.String(100), primary_key=True),
        sa.Column("nonce", sa.String(100), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_nonces_seen_at", "nonces", ["seen_at"], schema=SCHEMA)
    op.create_table(
        "sign_ins",
        sa.Column("sign_no", sa.String(30), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("opter_no", sa.String(30), nullable=False),
        sa.Column("mac", sa.String(40), nullable=False),
        sa.Column("ip", sa.String(40), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "persons",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("psn_no", sa.String(40), primary_key=True),
        sa.Column("basics", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "fee_lines",
        sa.Column("mdtrt_id", sa.String(40), primary_key=True),
        sa.Column("feedetl_sn", sa.String(64), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("chrg_bchno", sa.String(40)),
        sa.Column("init_feedetl_sn", sa.String(64)),
        sa.Column("cnt", sa.Numeric(16, 4), nullable=False),
        sa.Column("item", JSONB, nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status in ('active', 'cancelled')", name="ck_fee_lines_status"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("fee_lines", "persons", "sign_ins", "nonces", "messages"):
        op.drop_table(table, schema=SCHEMA)
