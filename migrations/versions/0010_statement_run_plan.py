"""Statement runs keep their chunk plan: a killed worker's chunks are re-queued exactly as planned.

- ``statement_runs.chunk_plan``: the (first, last) patient-id ranges the run was split into
  when it started. Re-queuing the chunks of a stalled run from a plan recomputed later would
  cut different ranges (a patient paid off or newly billed moves every later boundary), so
  ``chunks_done`` would no longer match and the run could end before the killed chunk's
  patients were considered. NULL for runs started before this revision: their plan is
  recomputed, as before.

Revision ID: 0010_statement_run_plan
Revises: 0009_claim_notes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_statement_run_plan"
down_revision: str | None = "0009_claim_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("statement_runs") as batch:
        batch.add_column(sa.Column("chunk_plan", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statement_runs") as batch:
        batch.drop_column("chunk_plan")
