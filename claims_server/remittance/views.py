"""``/api/v1/remittances``: upload an 835 (posted at once, or a dry run), list, read one."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from claims_server.app import db_session, state
from claims_server.remittance import services
from claims_server.remittance.schemas import (
    PostingReportSchema,
    RemittanceDetailSchema,
    RemittanceListArgsSchema,
    RemittancePageSchema,
    UploadArgsSchema,
)
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
def upload_remittance(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Store the 835 (raw, encrypted, SHA-256) and post it; ``dry_run=true`` changes nothing.

    The answer is the posting report: ``posted`` (201), ``duplicate`` (200: the same
    file, or the same payer and trace number, was posted before; nothing new), ``dry_run``
    (200) or ``failed`` (422, with the rule that failed; the file is kept, marked failed).
    """
    upload = receive_x12_upload()
    report = services.receive_and_post(
        state(current_app).session_factory,
        upload.content,
        stored_name=upload.stored_name,
        dry_run=args["dry_run"],
    )
    status = {"posted": 201, "failed": 422}.get(report.status, 200)
    return report.to_json_dict(), status


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
