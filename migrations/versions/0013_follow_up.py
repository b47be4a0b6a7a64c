"""Follow-up a billing team can live in: notes, appeals as records, refunds, approvals,
saved filters, and the queues for appeals, credit balances and approvals.

- ``notes``: a follow-up note (call, payer portal, letter, internal) on a claim, a patient
  or a work item, with an optional follow-up date; the text is AES-GCM ciphertext bound to
  the row's ``public_id``. Append-only like ``claim_notes`` (``0009_claim_notes``): DELETE
  (and TRUNCATE on PostgreSQL) is refused, and so is an UPDATE of any column but ``body``,
  which key rotation re-encrypts in place. The trigger SQL is a copy of
  ``claims_server.security.immutability`` (a revision may not import application code).
- ``appeals``: level (first, second, external), outcome, the denial date the deadline runs
  from, the appeal one level below, who opened it, and the attachments list (encrypted).
- ``approval_requests``: a write-off or refund above the requester's limit, for a supervisor.
- ``refunds``: money given back to a patient or a payer (check, card reversal, payer offset).
- ``saved_filters``: a user's named work-queue filters (name and query encrypted).
- ``service_lines``: an index on (claim_id, service_date_from) for the queue's date sorts.
- ``work_items``: queues ``appeal``, ``credit_balance`` and ``approval``; ``patient_id``,
  ``payer_id`` (a credit is a patient's or a payer's, not one claim's) and
  ``approval_request_id``.

Revision ID: 0013_follow_up
Revises: 0012_adjudication_history
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_follow_up"
down_revision: str | None = "0012_adjudication_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
NOTES = "notes"
#: Every column of ``notes`` but the encrypted ``body``.
NOTES_FROZEN = (
    "id, public_id, kind, claim_id, patient_id, work_item_id, author_user_id, follow_up_on, created_at"
)
OLD_QUEUES = (
    "'rejected', 'denied', 'unmatched', 'unpaid', 'needs_secondary', 'patient_balance', "
    "'possible_duplicate', 'reconciliation', 'other'"
)
NEW_QUEUES = (
    "'rejected', 'denied', 'unmatched', 'unpaid', 'needs_secondary', 'patient_balance', "
    "'possible_duplicate', 'reconciliation', 'appeal', 'credit_balance', 'approval', 'other'"
)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def _common(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("public_id", name=op.f(f"uq_{table}_public_id")),
    ]


def upgrade() -> None:
    op.create_table(
        "saved_filters",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        _fk("saved_filters", "user_id", "users"),
        *_common("saved_filters"),
    )
    op.create_index(op.f("ix_saved_filters_user_id"), "saved_filters", ["user_id"])

    op.create_table(
        "approval_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("claim_id", ID, nullable=True),
        sa.Column("patient_id", ID, nullable=True),
        sa.Column("payer_id", ID, nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_by_user_id", ID, nullable=True),
        sa.Column("decided_by_user_id", ID, nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("journal_entry_id", ID, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('write_off', 'refund')", name=op.f("ck_approval_requests_kind")),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'declined', 'withdrawn')",
            name=op.f("ck_approval_requests_state"),
        ),
        _fk("approval_requests", "claim_id", "claims"),
        _fk("approval_requests", "decided_by_user_id", "users"),
        _fk("approval_requests", "journal_entry_id", "journal_entries"),
        _fk("approval_requests", "patient_id", "patients"),
        _fk("approval_requests", "payer_id", "payers"),
        _fk("approval_requests", "requested_by_user_id", "users"),
        *_common("approval_requests"),
    )
    for column in ("claim_id", "patient_id", "state"):
        op.create_index(op.f(f"ix_approval_requests_{column}"), "approval_requests", [column])

    op.create_table(
        "refunds",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", ID, nullable=True),
        sa.Column("payer_id", ID, nullable=True),
        sa.Column("claim_id", ID, nullable=True),
        sa.Column("claim_payment_id", ID, nullable=True),
        sa.Column("remittance_id", ID, nullable=True),
        sa.Column("patient_payment_id", ID, nullable=True),
        sa.Column("provider_adjustment_id", ID, nullable=True),
        sa.Column("approval_request_id", ID, nullable=True),
        sa.Column("journal_entry_id", ID, nullable=True),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("issued_at", WHEN, nullable=True),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('patient', 'payer')", name=op.f("ck_refunds_kind")),
        sa.CheckConstraint(
            "method IN ('check', 'card_reversal', 'payer_offset')", name=op.f("ck_refunds_method")
        ),
        sa.CheckConstraint(
            "state IN ('pending_approval', 'issued', 'awaiting_offset', 'offset', 'declined')",
            name=op.f("ck_refunds_state"),
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_refunds_amount_positive")),
        _fk("refunds", "approval_request_id", "approval_requests"),
        _fk("refunds", "claim_id", "claims"),
        _fk("refunds", "claim_payment_id", "claim_payments"),
        _fk("refunds", "created_by_user_id", "users"),
        _fk("refunds", "journal_entry_id", "journal_entries"),
        _fk("refunds", "patient_id", "patients"),
        _fk("refunds", "patient_payment_id", "patient_payments"),
        _fk("refunds", "payer_id", "payers"),
        _fk("refunds", "provider_adjustment_id", "provider_adjustments"),
        _fk("refunds", "remittance_id", "remittances"),
        *_common("refunds"),
    )
    for column in ("claim_id", "patient_id", "payer_id", "state"):
        op.create_index(op.f(f"ix_refunds_{column}"), "refunds", [column])

    op.create_table(
        NOTES,
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("claim_id", ID, nullable=True),
        sa.Column("patient_id", ID, nullable=True),
        sa.Column("work_item_id", ID, nullable=True),
        sa.Column("author_user_id", ID, nullable=True),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('call', 'payer_portal', 'letter', 'internal')", name=op.f("ck_notes_kind")
        ),
        _fk(NOTES, "author_user_id", "users"),
        _fk(NOTES, "claim_id", "claims"),
        _fk(NOTES, "patient_id", "patients"),
        _fk(NOTES, "work_item_id", "work_items"),
        *_common(NOTES),
    )
    op.create_index("ix_notes_author_follow_up", NOTES, ["author_user_id", "follow_up_on"])
    for column in ("claim_id", "patient_id", "work_item_id"):
        op.create_index(op.f(f"ix_notes_{column}"), NOTES, [column])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER trg_{NOTES}_append_only BEFORE UPDATE OF {NOTES_FROZEN} OR DELETE ON {NOTES} "
            "FOR EACH ROW EXECUTE FUNCTION claims_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER trg_{NOTES}_no_truncate BEFORE TRUNCATE ON {NOTES} "
            "FOR EACH STATEMENT EXECUTE FUNCTION claims_refuse_change()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER trg_{NOTES}_no_update BEFORE UPDATE OF {NOTES_FROZEN} ON {NOTES} "
            f"BEGIN SELECT RAISE(ABORT, '{NOTES} is append-only: UPDATE refused'); END"
        )
        op.execute(
            f"CREATE TRIGGER trg_{NOTES}_no_delete BEFORE DELETE ON {NOTES} "
            f"BEGIN SELECT RAISE(ABORT, '{NOTES} is append-only: DELETE refused'); END"
        )

    with op.batch_alter_table("appeals") as batch:
        batch.add_column(sa.Column("level", sa.String(length=10), nullable=False, server_default="first"))
        batch.add_column(sa.Column("outcome", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("denial_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("parent_appeal_id", ID, nullable=True))
        batch.add_column(sa.Column("created_by_user_id", ID, nullable=True))
        batch.add_column(sa.Column("attachments", sa.Text(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_appeals_created_by_user_id_users"), "users", ["created_by_user_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_appeals_parent_appeal_id_appeals"), "appeals", ["parent_appeal_id"], ["id"]
        )
        batch.create_check_constraint(op.f("ck_appeals_level"), "level IN ('first', 'second', 'external')")
        batch.create_check_constraint(
            op.f("ck_appeals_outcome"), "outcome IN ('overturned', 'partially_overturned', 'upheld')"
        )
    with op.batch_alter_table("appeals") as batch:
        batch.alter_column(
            "level", server_default=None, existing_type=sa.String(length=10), existing_nullable=False
        )

    with op.batch_alter_table("work_items") as batch:
        batch.add_column(sa.Column("patient_id", ID, nullable=True))
        batch.add_column(sa.Column("payer_id", ID, nullable=True))
        batch.add_column(sa.Column("approval_request_id", ID, nullable=True))
        batch.create_index(op.f("ix_work_items_patient_id"), ["patient_id"])
        batch.create_index(op.f("ix_work_items_payer_id"), ["payer_id"])
        batch.create_foreign_key(op.f("fk_work_items_payer_id_payers"), "payers", ["payer_id"], ["id"])
        batch.create_foreign_key(
            op.f("fk_work_items_patient_id_patients"), "patients", ["patient_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_work_items_approval_request_id_approval_requests"),
            "approval_requests",
            ["approval_request_id"],
            ["id"],
        )
        batch.drop_constraint(op.f("ck_work_items_queue"), type_="check")
        batch.create_check_constraint(op.f("ck_work_items_queue"), f"queue IN ({NEW_QUEUES})")
    # The queue's date-of-service and filing-deadline sorts read each claim's first date of service
    # from this index alone (benchmarks/bench_work_queue.py: 207 ms -> 104 ms on 10,000 items).
    op.create_index(
        "ix_service_lines_claim_id_service_date_from", "service_lines", ["claim_id", "service_date_from"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_lines_claim_id_service_date_from", table_name="service_lines")
    op.execute("DELETE FROM work_items WHERE queue IN ('appeal', 'credit_balance', 'approval')")
    with op.batch_alter_table("work_items") as batch:
        batch.drop_constraint(op.f("ck_work_items_queue"), type_="check")
        batch.create_check_constraint(op.f("ck_work_items_queue"), f"queue IN ({OLD_QUEUES})")
        batch.drop_constraint(op.f("fk_work_items_approval_request_id_approval_requests"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_work_items_patient_id_patients"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_work_items_payer_id_payers"), type_="foreignkey")
        batch.drop_index(op.f("ix_work_items_payer_id"))
        batch.drop_index(op.f("ix_work_items_patient_id"))
        batch.drop_column("approval_request_id")
        batch.drop_column("payer_id")
        batch.drop_column("patient_id")
    with op.batch_alter_table("appeals") as batch:
        batch.drop_constraint(op.f("ck_appeals_outcome"), type_="check")
        batch.drop_constraint(op.f("ck_appeals_level"), type_="check")
        batch.drop_constraint(op.f("fk_appeals_parent_appeal_id_appeals"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_appeals_created_by_user_id_users"), type_="foreignkey")
        for column in (
            "attachments",
            "created_by_user_id",
            "parent_appeal_id",
            "denial_date",
            "outcome",
            "level",
        ):
            batch.drop_column(column)
    # Dropping a table drops its triggers (SQLite removes them before its implicit DELETE).
    op.drop_table(NOTES)
    op.drop_table("refunds")
    op.drop_table("approval_requests")
    op.drop_table("saved_filters")
