"""settlement.refuse(reason): raise from inside a statement, so that a statement committed by itself is
undone as a whole when one of its guards fails (a settle's single write: see ledger._WRITE_SETTLEMENT).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
SCHEMA = "settlement"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.refuse(reason text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = reason, HINT = 'yibao-refusal';
        END $$""")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.refuse(text)")
