"""The money after the settlement (issue 13): temporary catalogue entries, the account's life, and the books.

- catalogue: `valid_from` / `valid_to` (a temporary entry, e.g. the COVID drugs added for the epidemic);
- accounts: `closed_on` / `closure_reason` (transfer out, death: the balance paid out, later payments refused);
- account_movements: read per person in order (the statement); kinds credit, payment, refund, closure;
- account_credit_runs: one row per month credited by the monthly run (the same month again answers it);
- the books: every settlement paid partly from a personal account before the prepayment service booked account
  payments is announced once more on `settled` (a new event id, the same payload with `reannounced: true`), so that
  the prepayment service learns the account part it ignored (docs/events.md). Consumers that had the settlement
  already keep it as it was (reporting's moves, prepayment's pool entries); nothing is counted twice.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
SCHEMA = "settlement"


def reannouncement(schema: str, where: str = "TRUE") -> str:
    """The statement that announces again, on `settled`, every settlement paid partly from a personal account (those
    matching `where` too): a new event id, the stored payload with `reannounced: true`. The envelope of
    shared/events/envelope.py, written in SQL: a migration does not import the code it precedes."""
    return f"""
        INSERT INTO {schema}.outbox (event_id, topic, key, type, envelope)
        SELECT s.id, 'settled', s.psn_no, 'settled', jsonb_build_object(
                   'event_id', s.id::text, 'type', 'settled', 'version', 1,
                   'occurred_at', to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+08:00',
                   'producer', 'settlement', 'key', s.psn_no,
                   'payload', s.event || jsonb_build_object('reannounced', true))
          FROM (SELECT gen_random_uuid() AS id, psn_no, event
                  FROM {schema}.settlements WHERE acct_pay > 0 AND ({where}) ORDER BY setl_time, setl_id) s
    """


def upgrade() -> None:
    op.add_column("catalogue", sa.Column("valid_from", sa.Date), schema=SCHEMA)
    op.add_column("catalogue", sa.Column("valid_to", sa.Date), schema=SCHEMA)
    op.create_check_constraint(
        "ck_catalogue_validity",
        "catalogue",
        "valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from",
        schema=SCHEMA,
    )
    op.add_column("accounts", sa.Column("closed_on", sa.Date), schema=SCHEMA)
    op.add_column("accounts", sa.Column("closure_reason", sa.String(16)), schema=SCHEMA)
    op.create_check_constraint(
        "ck_accounts_closure",
        "accounts",
        "(closed_on IS NULL AND closure_reason IS NULL) OR "
        "(closed_on IS NOT NULL AND closure_reason IN ('transfer_out', 'death'))",
        schema=SCHEMA,
    )
    op.create_index("ix_account_movements_psn", "account_movements", ["psn_no", "id"], schema=SCHEMA)
    op.create_table(
        "account_credit_runs",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.Column("total", sa.Numeric(18, 2), nullable=False),
        sa.Column("answer", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.execute(reannouncement(SCHEMA))


def downgrade() -> None:
    op.drop_table("account_credit_runs", schema=SCHEMA)
    op.drop_index("ix_account_movements_psn", "account_movements", schema=SCHEMA)
    op.drop_constraint("ck_accounts_closure", "accounts", schema=SCHEMA)
    op.drop_column("accounts", "closure_reason", schema=SCHEMA)
    op.drop_column("accounts", "closed_on", schema=SCHEMA)
    op.drop_constraint("ck_catalogue_validity", "catalogue", schema=SCHEMA)
    op.drop_column("catalogue", "valid_to", schema=SCHEMA)
    op.drop_column("catalogue", "valid_from", schema=SCHEMA)
