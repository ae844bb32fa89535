"""The double-entry ledger, per-settlement state, prepayments, clearings, budgets, idempotency keys.

The database enforces what the code already checks: a line is a positive debit or a positive
credit; every journal entry balances (a deferred constraint trigger, checked at commit, so an
entry and its lines are inserted in any order within the transaction); journal lines are never
changed or deleted, and an entry only ever gains its clearing.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "prepayment"
MONEY = sa.Numeric(18, 2)


def _now() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("entry_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(120), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("fixmedins_code", sa.String(32)),
        sa.Column("setl_id", sa.String(64)),
        sa.Column("clearing_id", sa.String(36)),
        sa.Column("memo", sa.String(200), nullable=False, server_default=""),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_journal_entries_code", "journal_entries", ["fixmedins_code", "business_date"], schema=SCHEMA)
    op.create_index("ix_journal_entries_clearing", "journal_entries", ["clearing_id"], schema=SCHEMA)
    op.create_table(
        "journal_lines",
        sa.Column("line_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.journal_entries.entry_id"), nullable=False),
        sa.Column("account", sa.String(96), nullable=False),
        sa.Column("debit", MONEY, nullable=False, server_default="0"),
        sa.Column("credit", MONEY, nullable=False, server_default="0"),
        sa.CheckConstraint(
            "debit >= 0 AND credit >= 0 AND ((debit = 0) <> (credit = 0))", name="ck_journal_lines_one_positive_side"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_journal_lines_entry", "journal_lines", ["entry_id"], schema=SCHEMA)
    op.create_index("ix_journal_lines_account", "journal_lines", ["account"], schema=SCHEMA)

    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            n integer; debits numeric; credits numeric;
        BEGIN
            SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0) INTO n, debits, credits
              FROM {SCHEMA}.journal_lines WHERE entry_id = NEW.entry_id;
            IF n < 2 OR debits <> credits THEN
                RAISE EXCEPTION 'journal entry % does not balance: % lines, debits %, credits %',
                    NEW.entry_id, n, debits, credits USING ERRCODE = '23514';
            END IF;
            RETURN NULL;
        END $$;
    """)
    for table in ("journal_entries", "journal_lines"):
        op.execute(f"""
            CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON {SCHEMA}.{table}
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.check_entry_balanced();
        """)
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.journal_lines_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the journal is append-only (% on journal_lines)', TG_OP USING ERRCODE = '23514';
        END $$;
    """)
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.journal_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF OLD.clearing_id IS NULL
                   AND (NEW.entry_id, NEW.ref, NEW.kind, NEW.business_date, NEW.fixmedins_code, NEW.setl_id,
                        NEW.memo, NEW.posted_at)
                       IS NOT DISTINCT FROM
                       (OLD.entry_id, OLD.ref, OLD.kind, OLD.business_date, OLD.fixmedins_code, OLD.setl_id,
                        OLD.memo, OLD.posted_at)
                THEN
                    RETURN NEW;  -- the only change allowed: an entry gains its clearing
                END IF;
            END IF;
            RAISE EXCEPTION 'the journal is append-only (% on journal_entries)', TG_OP USING ERRCODE = '23514';
        END $$;
    """)
    for table in ("journal_entries", "journal_lines"):
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.{table}
            FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.{table}_append_only();
        """)

    op.create_table(
        "settlements",
        sa.Column("setl_id", sa.String(64), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("setl_date", sa.Date),
        sa.Column("covid_status", sa.String(16)),
        *(
            sa.Column(name, MONEY)
            for name in ("hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay", "fund_pay_sumamt", "fin_subsidy_pay")
        ),
        sa.Column("reversed_on", sa.Date),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_settlements_budget", "settlements", ["fixmedins_code", "setl_date"], schema=SCHEMA)
    op.create_table(
        "subsidies",
        sa.Column("setl_id", sa.String(64), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("case_status", sa.String(16)),
        sa.Column("amount", MONEY),
        sa.Column("advance_payer", sa.String(16)),
        sa.Column("setl_date", sa.Date),
        sa.Column("reversed_on", sa.Date),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "subsidy_shares",
        sa.Column("setl_id", sa.String(64), sa.ForeignKey(f"{SCHEMA}.subsidies.setl_id"), primary_key=True),
        sa.Column("payer", sa.String(16), primary_key=True),
        sa.Column("share", MONEY, nullable=False),
        sa.Column("advanced", MONEY, nullable=False),
        sa.Column("recoverable", MONEY, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_subsidy_shares_payer", "subsidy_shares", ["payer"], schema=SCHEMA)
    op.create_table(
        "prepayments",
        sa.Column("prepayment_id", sa.String(36), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scheduled_on", sa.Date),
        sa.Column("disbursed_on", sa.Date),
        sa.Column("plan_id", sa.String(36)),
        _now(),
        sa.CheckConstraint("amount > 0", name="ck_prepayments_amount_positive"),
        sa.CheckConstraint(
            "kind IN ('annual_turnover', 'covid_special', 'monthly', 'top_up')", name="ck_prepayments_kind"
        ),
        sa.CheckConstraint(
            "(status = 'disbursed' AND disbursed_on IS NOT NULL) OR "
            "(status = 'scheduled' AND disbursed_on IS NULL AND scheduled_on IS NOT NULL)",
            name="ck_prepayments_status",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_prepayments_code", "prepayments", ["fixmedins_code"], schema=SCHEMA)
    op.create_index(
        "ix_prepayments_due",
        "prepayments",
        ["scheduled_on"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_table(
        "clearings",
        sa.Column("clearing_id", sa.String(36), primary_key=True),
        sa.Column("fixmedins_code", sa.String(32), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        *(
            sa.Column(name, MONEY, nullable=False)
            for name in ("carried_in", "prepaid", "fund_payable", "net_due", "paid", "carried_out", "offset")
        ),
        _now(),
        sa.UniqueConstraint("fixmedins_code", "period_start", "period_end", name="uq_clearings_period"),
        sa.CheckConstraint("period_end >= period_start", name="ck_clearings_period"),
        sa.CheckConstraint("paid >= 0 AND carried_out <= 0", name="ck_clearings_signs"),
        schema=SCHEMA,
    )
    op.create_table(
        "budgets",
        sa.Column("fixmedins_code", sa.String(32), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount > 0", name="ck_budgets_amount_positive"),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("idem_key", sa.String(200), primary_key=True),
        sa.Column("endpoint", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB),
        _now(),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "budgets",
        "clearings",
        "prepayments",
        "subsidy_shares",
        "subsidies",
        "settlements",
        "journal_lines",
        "journal_entries",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.journal_lines_append_only()")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.journal_entries_append_only()")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.check_entry_balanced()")
