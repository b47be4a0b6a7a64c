"""``/api/v1/batches``: send ready claims (batch and upload), list batches, read one with its files
and download each file (audited)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.models.submissions import BatchState
from claims_server.submission import sending
from claims_server.submission.schemas import (
    BatchDetailSchema,
    BatchListArgsSchema,
    BatchPageSchema,
    SendInSchema,
    SendReportSchema,
)

blp = Blueprint(
    "batches",
    __name__,
    url_prefix="/api/v1/batches",
    description="Sending claims: ready claims batched into 837 interchanges and uploaded to the "
    "clearinghouse; batches with their totals per payer and the 837, 999 and 277CA files about them.",
)


def file_links(batch_id: str) -> Callable[[str], str]:
    """The address of each of the batch's files (this API's audited download)."""
    return lambda file_id: url_for("batches.get_batch_file", batch_id=batch_id, file_id=file_id)


@blp.route("", methods=["POST"])
@mutation(idempotent=True, own_transactions=True)
@blp.arguments(SendInSchema, example={"dry_run": True})
@blp.response(201, SendReportSchema, description="batches built and sent (or queued to send)")
@blp.alt_response(200, schema=SendReportSchema, description="a dry run, or nothing was batched", success=True)
@blp.alt_response(409, description="a request with this Idempotency-Key is still running")
@blp.alt_response(422, description="an unknown claim or route, or Idempotency-Key reused")
def send_batches(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Batch the ready claims (all, or ``claim_ids``; every route, or ``route``) and send each batch.

    Claims the 837 checks refuse are held (back to draft, findings in ``held``); chosen
    claims that are not ready are named in ``not_ready``, chosen ready claims that went in
    no batch in ``not_batched`` with the reason. In-process (no broker) each batch is
    uploaded before the answer and its ``state`` is ``sent`` (or ``failed`` with
    ``last_error``); with a broker it is queued and ``built`` (with ``last_error`` when the
    broker refused it). A batch that did not go is kept and sent again by the
    resume-unsent-batches job; the answer is still 201 with every batch's id and state.
    ``dry_run`` changes nothing. Send ``Idempotency-Key`` to make a retry safe.
    """
    route_id = sending.route_id_of(db_session(), data["route"]) if data["route"] else None
    report = sending.send_ready_claims(
        state().session_factory, claim_ids=data["claim_ids"], route_id=route_id, dry_run=data["dry_run"]
    )
    built = bool(report.batches) and not report.dry_run
    return report.to_json_dict(), 201 if built else 200


@blp.route("", methods=["GET"])
@blp.arguments(BatchListArgsSchema, location="query")
@blp.response(200, BatchPageSchema)
def list_batches(args: dict[str, Any]) -> dict[str, Any]:
    """Batches newest first, with claims, totals per payer, state and attempts (filters: state, route)."""
    session = db_session()
    page = sending.list_batches(
        session,
        state=BatchState(args["state"]) if args["state"] else None,
        route=args["route"],
        limit=args["limit"],
        cursor=args["cursor"],
    )
    return {"items": sending.batches_to_json(session, page.items), "next_cursor": page.next_cursor}


@blp.route("/<batch_id>", methods=["GET"])
@blp.response(200, BatchDetailSchema)
@blp.alt_response(404, description="no such batch")
def get_batch(batch_id: str) -> dict[str, Any]:
    """One batch: totals per payer, state, attempts, last error, its TA1 answer and its files (837,
    999, 277CA) with their status and download address."""
    session = db_session()
    return sending.batch_to_json(
        session, sending.get_batch(session, batch_id), file_link=file_links(batch_id)
    )


@blp.route("/<batch_id>/files/<file_id>", methods=["GET"], endpoint="get_batch_file")
@blp.doc(
    responses={
        "200": {
            "description": "the file as stored (X12), as an attachment",
            "content": {"application/edi-x12": {"schema": {"type": "string"}}},
        }
    }
)
@blp.alt_response(404, description="no such batch, or the file is not one of its files")
@mutation()
def get_batch_file(batch_id: str, file_id: str) -> Response:
    """One of the batch's files (its 837, a 999 or 277CA about it) as stored. The file carries
    patient data: the download is audited (the file, and each patient in it)."""
    session = db_session()
    raw = sending.read_batch_file(session, sending.get_batch(session, batch_id), file_id)
    response = Response(raw.content, mimetype="application/edi-x12")
    response.headers["Content-Disposition"] = f'attachment; filename="{raw.name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
