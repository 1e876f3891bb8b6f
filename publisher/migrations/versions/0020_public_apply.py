"""public apply form: a request's receipt number (回执编号, unique) and the applicant's contact, and
the per-address counter that rate-limits the public form (docs/report.md)

Revision ID: 0020_public_apply
Revises: 0019_site_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_public_apply"
down_revision = "0019_site_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("disclosure_request", sa.Column("receipt_no", sa.String(length=40), nullable=True))
    op.add_column("disclosure_request", sa.Column("contact", sa.String(length=300), nullable=True))
    # a unique index rather than a constraint: SQLite adds it without rebuilding the table
    op.create_index("ix_disclosure_request_receipt_no", "disclosure_request", ["receipt_no"], unique=True)
    op.create_table(
        "form_rate",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start_us", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("form_rate")
    op.drop_index("ix_disclosure_request_receipt_no", table_name="disclosure_request")
    op.drop_column("disclosure_request", "contact")
    op.drop_column("disclosure_request", "receipt_no")
