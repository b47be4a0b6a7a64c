"""``/api/v1/remittances``: upload an 835 (posted at once, or a dry run), list, read one."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from claims_server.app import db_session, state
from claims_server.db import unit_of_work
from claims_server.models import EdiFileStatus
from claims_server.remittance import services
from claims_server.remittance.foreign import check_origin, require_confirmation
from claims_server.remittance.schemas import (
    PostingReportSchema,
    RemittanceDetailSchema,
    RemittanceListArgsSchema,
    RemittancePageSchema,
    UploadArgsSchema,
)
from claims_server.security.principal import current_principal
from claims_server.security.uploads import X12_BODY_SCHEMA, X12_CONTENT_TYPES, receive_x12_upload

blp = Blueprint(
    "remittances",
    __name__,
    url_prefix="/api/v1/remittances",
    description="835 remittances: upload and post to the ledger exactly once, list, read what was posted.",
)


@blp.route("", methods=["POST"])
@blp.arguments(UploadArgsSchema, location="query")
@blp.response(200, PostingReportSchema)
@blp.doc(
    requestBody={
        "required": True,
        "description": "One X12 interchange holding 835 transaction sets, sent as the raw body.",
        "content": {media: {"schema": dict(X12_BODY_SCHEMA)} for media in X12_CONTENT_TYPES},
    }
)
@blp.alt_response(413, description="the file exceeds MAX_UPLOAD_BYTES")
@blp.alt_response(415, description="not application/edi-x12, text/plain or application/octet-stream")
@blp.alt_response(422, description="not an X12 interchange, or not an 835")
@blp.alt_response(
    409,
    description="the payer or payee is not ours, or none of the claims is: confirm_foreign=true "
    "from a billing supervisor posts it (the problem's ``origin`` says why)",
)
def upload_remittance(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Store the 835 (raw, encrypted, SHA-256) and post it; ``dry_run=true`` changes nothing.

    The answer is the posting report: ``posted`` (201), ``duplicate`` (200: the same
    file, or the same payer and trace number, was posted before; nothing new), ``dry_run``
    (200) or ``failed`` (422, with the rule that failed; the file is kept, marked failed).
    """
    upload = receive_x12_upload()
    factory = state(current_app).session_factory
    # Stored first (nothing is lost), then: is it ours? A foreign file a person uploads is posted
    # only with a billing supervisor's confirm_foreign=true (409 naming it otherwise; the file
    # stays stored and the workspace's preview can post it later). An integration's upload is
    # the clearinghouse's delivery, routed to us by our ids like the SFTP poll's: posted as
    # before, its unmatched claims in the unmatched queue, the origin in the answer.
    with unit_of_work(factory) as session:
        row, _ = services.store_835(session, upload.content, stored_name=upload.stored_name)
        file_id, processed = row.id, row.status is EdiFileStatus.PROCESSED
        origin = check_origin(session, file_id)
    # A file that cannot be posted at all fails as before (422, marked failed) before the
    # question of whose it is.
    if (
        not args["dry_run"]
        and not processed
        and origin.foreign
        and current_principal().is_staff
        and services.run_posting(factory, file_id, dry_run=True).status != "failed"
    ):
        require_confirmation(origin, args["confirm_foreign"])
    report = services.run_posting(factory, file_id, dry_run=args["dry_run"])
    status = {"posted": 201, "failed": 422}.get(report.status, 200)
    return report.to_json_dict() | {"origin": origin.to_json_dict()}, status


upload_remittance.accepts = X12_CONTENT_TYPES  # type: ignore[attr-defined]


@blp.route("", methods=["GET"])
@blp.arguments(RemittanceListArgsSchema, location="query")
@blp.response(200, RemittancePageSchema)
def list_remittances(args: dict[str, Any]) -> dict[str, Any]:
    """List remittances (filter by state; cursor pages)."""
    session = db_session()
    page = services.list_remittances(session, limit=args["limit"], cursor=args["cursor"], state=args["state"])
    return {
        "items": [services.remittance_summary_json(session, r) for r in page.items],
        "next_cursor": page.next_cursor,
    }


@blp.route("/<string:remittance_id>", methods=["GET"])
@blp.response(200, RemittanceDetailSchema)
@blp.alt_response(404, description="no such remittance")
def get_remittance(remittance_id: str) -> dict[str, Any]:
    """One remittance: claims, lines, adjustments explained, what was posted, unmatched items."""
    session = db_session()
    return services.remittance_detail_json(session, services.get_remittance(session, remittance_id))
