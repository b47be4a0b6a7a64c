"""Remittances (``/ui/remittances``): payments received, one payment explained, and 835 upload with a dry run.

The upload goes through the same path as ``POST /api/v1/remittances``: the browser sends
the file as the raw body (``application/edi-x12``, a few lines of JS in
``static/remittance_upload.js``), never multipart — Werkzeug spools multipart parts over
500 KB to temporary files, which would put PHI on disk in clear (security/uploads.py).
``receive_x12_upload`` applies the size cap, the ISA check and the upload rate limit;
``store_835`` keeps the bytes encrypted with their SHA-256 (the same bytes twice are one
file). Nothing is posted then: the preview page runs ``run_posting(..., dry_run=True)``
(the same computation, rolled back; the dry run is audited) and shows what would be
posted, or the structured error (segment, element, rule) of a file that cannot be posted.
Only "Post" (a POST with the CSRF token) posts, exactly once: a second click finds the
payment posted and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, jsonify, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.db import unit_of_work
from claims_server.errors import ApiError, Conflict, NotFound
from claims_server.models import Claim, EdiFile, EdiFileKind, EdiFileStatus, FileDirection, Remittance
from claims_server.remittance import services
from claims_server.remittance.foreign import CONFIRMING_ROLES, check_origin, require_confirmation
from claims_server.remittance.posting import PostingReport
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.security.uploads import X12_CONTENT_TYPES, receive_x12_upload
from claims_server.ui.blueprint import bp, money, page
from edi.x835 import CLAIM_STATUS, PAYMENT_METHODS

STATES = ("received", "posted", "failed")


def _may_post() -> bool:
    """Whether the policy lets the caller post (the upload form and Post button show only then)."""
    rule = rule_for("ui.remittance_post")
    return rule is not None and current_principal().role in rule.roles


def _pending_uploads(session: Session) -> list[Any]:
    """Inbound 835s stored but not posted (uploaded for a dry run, or left by a failed poll)."""
    return list(
        session.execute(
            select(EdiFile.public_id, EdiFile.received_at, EdiFile.size_bytes, EdiFile.sha256)
            .where(
                EdiFile.kind == EdiFileKind.REMITTANCE_835,
                EdiFile.direction == FileDirection.INBOUND,
                EdiFile.status == EdiFileStatus.RECEIVED,
            )
            .order_by(EdiFile.id.desc())
            .limit(20)
        )
    )


@bp.route("/remittances", methods=["GET"], endpoint="remittances")
def remittances() -> Response:
    """Payments received, newest first (filter by state), the upload form and uploads awaiting posting."""
    session = db_session()
    wanted = request.args.get("state") or None
    errors: dict[str, str] = {}
    if wanted is not None and wanted not in STATES:
        errors["state"] = f"Choose one of: {', '.join(STATES)}."
        wanted = None
    listing = services.list_remittances(
        session, limit=50, cursor=request.args.get("cursor") or None, state=wanted, newest_first=True
    )
    return page(
        "remittances.html",
        422 if errors else 200,
        errors=errors,
        items=[services.remittance_summary_json(session, r) for r in listing.items],
        next_cursor=listing.next_cursor,
        state=wanted or "",
        state_options=[(s, s) for s in STATES],
        pending=_pending_uploads(session) if _may_post() else [],
        may_post=_may_post(),
        max_bytes=int(current_app.config.get("MAX_CONTENT_LENGTH") or 0),
    )


def claim_numbers(session: Session, public_ids: list[str | None]) -> dict[str, str]:
    """Our claim number (patient control number, CLM01) of each claim public id: what the
    workspace shows for a claim, never an internal or public id."""
    wanted = {i for i in public_ids if i}
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Claim.public_id, Claim.patient_control_number).where(Claim.public_id.in_(wanted))
        ).all()
    )


@bp.route("/remittances/<remittance_id>", methods=["GET"], endpoint="remittance")
def remittance(remittance_id: str) -> Response:
    """One payment: its claims and lines, each adjustment explained, what was posted, what is unmatched."""
    session = db_session()
    found = services.get_remittance(session, remittance_id)
    detail = services.remittance_detail_json(session, found)
    origin = check_origin(session, found.edi_file_id)
    return page(
        "remittance.html",
        r=detail,
        origin=next((p for p in origin.payments if p.trace_number == found.trace_number and p.foreign), None),
        claim_numbers=claim_numbers(
            session,
            [c["claim"] for c in detail["claim_payments"]]
            + [a.get("claim") for a in detail["provider_adjustments"]],
        ),
        claim_status=CLAIM_STATUS,
        payment_methods=PAYMENT_METHODS,
    )


@bp.route("/remittances/upload", methods=["POST"], endpoint="remittance_upload")
@mutation()
def remittance_upload() -> tuple[Response, int]:
    """Store an uploaded 835 (raw body) and answer where its dry-run preview is (JSON for the page's script)."""
    try:
        upload = receive_x12_upload()
        with unit_of_work(state(current_app).session_factory) as session:
            row, existed = services.store_835(session, upload.content, stored_name=upload.stored_name)
            file_id = row.public_id
    except ApiError as exc:
        messages = [str(e.get("message")) for e in exc.errors if e.get("message")]
        return jsonify({"detail": exc.detail, "errors": messages}), exc.status
    return jsonify({"preview": url_for("ui.remittance_preview", file_id=file_id), "existed": existed}), 201


remittance_upload.accepts = X12_CONTENT_TYPES  # type: ignore[attr-defined]  # MAX_UPLOAD_BYTES applies


def _inbound_835(session: Session, file_id: str) -> Any:
    row = session.execute(
        select(
            EdiFile.id,
            EdiFile.public_id,
            EdiFile.status,
            EdiFile.received_at,
            EdiFile.size_bytes,
            EdiFile.sha256,
        ).where(
            EdiFile.public_id == file_id,
            EdiFile.kind == EdiFileKind.REMITTANCE_835,
            EdiFile.direction == FileDirection.INBOUND,
        )
    ).first()
    if row is None:
        raise NotFound("no uploaded 835 with that id")
    # Posting runs in its own transactions: end this read so SQLite can take the write lock.
    session.rollback()
    return row


def _problems(report: PostingReport) -> list[dict[str, Any]]:
    """The report's error and error findings as rows: where (segment, position, element), rule, message."""
    rows: list[dict[str, Any]] = []
    error = report.error or {}
    for e in error.get("errors") or []:
        rows.append(
            {
                "segment": e.get("segment") or e.get("field"),
                "position": e.get("segment_position") or e.get("segment_ordinal"),
                "element": e.get("element"),
                "rule": e.get("code") or e.get("rule") or error.get("rule"),
                "message": e.get("message"),
            }
        )
    for check in error.get("checks") or []:
        if not check.get("ok", True):
            rows.append(
                {
                    "segment": None,
                    "position": None,
                    "element": None,
                    "rule": check.get("name"),
                    "message": check.get("detail"),
                }
            )
    for f in report.findings:
        if f.severity.value == "error":
            rows.append(
                {
                    "segment": f.segment,
                    "position": f.segment_position,
                    "element": f.element,
                    "rule": f.code,
                    "message": f.message,
                }
            )
    return rows


def _claims_named(session: Session, report: PostingReport) -> dict[str, Claim]:
    """The matched claims (their current state is shown; loading them audits the PHI read)."""
    ids = {c.claim for r in report.remittances for c in r.claims if c.claim}
    if not ids:
        return {}
    return {c.public_id: c for c in session.scalars(select(Claim).where(Claim.public_id.in_(ids)))}


def _posted_remittances(session: Session, file_row_id: int) -> list[Remittance]:
    return list(
        session.scalars(
            select(Remittance).where(Remittance.edi_file_id == file_row_id).order_by(Remittance.id)
        )
    )


def _may_confirm_foreign() -> bool:
    return current_principal().role in CONFIRMING_ROLES


def _preview_page(
    session: Session,
    row: Any,
    report: PostingReport,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    origin = check_origin(session, row.id)
    session.rollback()
    return page(
        "remittance_preview.html",
        status,
        file=row,
        report=report,
        origin=origin,
        may_confirm_foreign=_may_confirm_foreign(),
        errors=errors or {},
        summary=report.summary(),
        problems=_problems(report),
        claims=_claims_named(session, report),
        posted=_posted_remittances(session, row.id),
        claim_status=CLAIM_STATUS,
        may_post=_may_post(),
    )


@bp.route("/remittances/files/<file_id>", methods=["GET"], endpoint="remittance_preview")
def remittance_preview(file_id: str) -> Response:
    """What posting this 835 would do (a dry run: nothing changes), or why it cannot be posted."""
    session = db_session()
    row = _inbound_835(session, file_id)
    if row.status is EdiFileStatus.PROCESSED:
        posted = _posted_remittances(session, row.id)
        if len(posted) == 1:
            return redirect(url_for("ui.remittance", remittance_id=posted[0].public_id), 303)
    report = services.run_posting(state(current_app).session_factory, row.id, dry_run=True)
    return _preview_page(session, row, report, 422 if report.status == "failed" else 200)


@bp.route("/remittances/files/<file_id>/post", methods=["POST"], endpoint="remittance_post")
@mutation()
def remittance_post(file_id: str) -> Response:
    """Post the previewed 835 to the ledger, exactly once."""
    session = db_session()
    row = _inbound_835(session, file_id)
    if row.status is not EdiFileStatus.PROCESSED:
        # Not ours by the look of it: only a billing supervisor's ticked box posts it.
        origin = check_origin(session, row.id)
        session.rollback()
        try:
            require_confirmation(origin, request.form.get("confirm_foreign") == "yes")
        except Conflict as exc:
            preview = services.run_posting(state(current_app).session_factory, row.id, dry_run=True)
            message = str(exc.errors[0]["message"]) if exc.errors else exc.detail
            errors = {"confirm_foreign": message[:1].upper() + message[1:] + "."}
            return _preview_page(session, row, preview, 409, errors)
    report = services.run_posting(state(current_app).session_factory, row.id)
    if report.status == "failed":
        return _preview_page(session, row, report, 422)
    summary = report.summary()
    if report.duplicate:
        flash("This payment was posted before; nothing was posted again.", "error")
    else:
        flash(
            f"Posted {money(summary['paid_posted_cents'])} to {summary['claims_posted']} claim(s); "
            f"{summary['work_items_opened']} work item(s) opened for denials and unmatched items.",
            "success",
        )
    live = [r.remittance_public_id for r in report.remittances if r.remittance_public_id]
    target = live[0] if len(live) == 1 else None
    if target is None and report.duplicate:
        target = next((r.duplicate_of for r in report.remittances if r.duplicate_of), None)
    if target:
        return redirect(url_for("ui.remittance", remittance_id=target), 303)
    return redirect(url_for("ui.remittances"), 303)
