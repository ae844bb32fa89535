"""Indexes for the question "has this institution seen this person?" (GET /v1/accounts/{psn_no} by an HIS or
pharmacy key): prescriptions and claims by person, settlements by the account that paid.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "settlement"


def upgrade() -> None:
    op.create_index("ix_prescriptions_psn_no", "prescriptions", ["psn_no"], schema=SCHEMA)
    op.create_index("ix_claims_psn_no", "claims", ["psn_no"], schema=SCHEMA)
    op.create_index(
        "ix_settlements_acct_payer",
        "settlements",
        ["acct_payer_psn_no"],
        schema=SCHEMA,
        postgresql_where=sa.text("acct_payer_psn_no IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_settlements_acct_payer", "settlements", schema=SCHEMA)
    op.drop_index("ix_claims_psn_no", "claims", schema=SCHEMA)
    op.drop_index("ix_prescriptions_psn_no", "prescriptions", schema=SCHEMA)
