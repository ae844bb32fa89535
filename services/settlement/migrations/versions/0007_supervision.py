"""Supervision (issue 16): what the rules read of a catalogue entry — its category (drug, examination, treatment,
material), whether a drug is an essential drug (基本药物) and whether the code is one of the watched goods of the
price and sales watch. Seeded entries learn them from deploy/policy/catalogue at the next start (the seed follows
the reference files on the entries it seeded); an admin's entries keep what the admin says.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
SCHEMA = "settlement"


def upgrade() -> None:
    op.add_column("catalogue", sa.Column("category", sa.String(16)), schema=SCHEMA)
    op.add_column(
        "catalogue", sa.Column("essential", sa.Boolean, nullable=False, server_default=sa.false()), schema=SCHEMA
    )
    op.add_column(
        "catalogue", sa.Column("watched", sa.Boolean, nullable=False, server_default=sa.false()), schema=SCHEMA
    )
    op.create_check_constraint(
        "ck_catalogue_category",
        "catalogue",
        "category IS NULL OR category IN ('drug', 'examination', 'treatment', 'material')",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_catalogue_essential", "catalogue", "NOT essential OR category = 'drug'", schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_constraint("ck_catalogue_essential", "catalogue", schema=SCHEMA)
    op.drop_constraint("ck_catalogue_category", "catalogue", schema=SCHEMA)
    op.drop_column("catalogue", "watched", schema=SCHEMA)
    op.drop_column("catalogue", "essential", schema=SCHEMA)
    op.drop_column("catalogue", "category", schema=SCHEMA)
