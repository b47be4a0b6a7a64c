"""Approvals in the workspace: the supervisors' page of pending requests, and withdrawal.

- ``/ui/approvals``: pending requests, the longest waiting first (kind, claim, patient,
  payer, amount, requester, note, age), each with a note and Approve / Decline; below,
  the last decided ones. A refused decision (a decline without a note, one's own request,
  a request someone else decided first, a balance that changed) re-renders the page with
  the message beside that request's note field, and nothing is posted.
- ``POST /ui/approvals/<id>/withdraw``: the requester takes back a pending request (the
  claim page shows its pending requests with this button).

Both go through ``claims_server.ledger.approvals``, the functions behind ``/api/v1/approvals``.
The navigation shows supervisors how many requests wait (:func:`_pending_count`).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, flash, g, redirect, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.ledger import approvals
from claims_server.ledger.write_offs import REASON_LABELS, WriteOffReason
from claims_server.models import Claim
from claims_server.models.common import utcnow
from claims_server.models.workqueue import ApprovalState
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, current_user, field_errors, money, page

log = logging.getLogger(__name__)

KIND_LABELS = {"write_off": "Write-off", "refund": "Refund"}
#: How many decided requests the page shows under the pending ones.
RECENT = 20


def _what(view: approvals.ApprovalView) -> str:
    """A request's action in words: "patient balance, bad debt / collections" (codes only, no PHI)."""
    asked = view.approval.request or {}
    parts = []
    if asked.get("bucket"):
        parts.append(f"{asked['bucket']} balance")
    if asked.get("reason"):
        try:
            parts.append(REASON_LABELS[WriteOffReason(str(asked["reason"]))].lower())
        except ValueError:
            parts.append(str(asked["reason"]))
    if asked.get("method"):
        parts.append(str(asked["method"]).replace("_", " "))
    if asked.get("line"):
        parts.append(f"line {asked['line']}")
    return ", ".join(parts)


def _rows(states: list[ApprovalState | None], limit: int) -> list[dict[str, Any]]:
    session = db_session()
    today = utcnow().date()
    rows = []
    for state in states:
        for approval in approvals.list_approvals(session, state=state, limit=limit):
            view = approvals.view_of(session, approval)
            claim = session.get(Claim, approval.claim_id) if approval.claim_id else None
            rows.append(
                {
                    "view": view,
                    "a": approval,
                    "claim": claim,
                    "what": _what(view),
                    "age": view.age_days(today),
                    "kind": KIND_LABELS.get(approval.kind.value, approval.kind.value),
                }
            )
    return rows


def _render(
    status: int = 200, errors: dict[str, dict[str, str]] | None = None, notes: Any = None
) -> Response:
    decided = [
        r for r in _rows([ApprovalState.APPROVED, ApprovalState.DECLINED, ApprovalState.WITHDRAWN], RECENT)
    ]
    decided.sort(key=lambda r: r["a"].decided_at or r["a"].updated_at, reverse=True)
    principal = current_principal()
    return page(
        "approvals.html",
        status,
        pending=_rows([ApprovalState.PENDING], 500),
        decided=decided[:RECENT],
        errors=errors or {},
        notes=notes or {},
        may_decide=principal.role in approvals.APPROVER_ROLES,
        me=principal.user_id,
    )


@bp.route("/approvals", methods=["GET"], endpoint="approvals")
def approvals_page() -> Response:
    """Pending approval requests, the longest waiting first, and the last decided ones."""
    return _render()


@bp.route("/approvals/<approval_id>/decision", methods=["POST"], endpoint="approval_decide")
@mutation()
def approval_decide(approval_id: str) -> Response:
    """Approve (posts it as the supervisor) or decline (note required) one request."""
    session = db_session()
    decision = request.form.get("decision", "")
    note = request.form.get("note", "")
    try:
        approval = approvals.get_approval(session, approval_id)
        if decision not in ("approve", "decline"):
            raise ApiError(
                "choose approve or decline",
                errors=[{"field": "decision", "message": "Choose Approve or Decline."}],
            )
        approvals.decide(session, approval, approve=decision == "approve", by=current_user(), note=note)
    except ApiError as exc:
        session.rollback()  # nothing of a refused decision may show, nor be committed
        errors = field_errors(exc, {"decision": "note"})
        status = exc.status if exc.status in (403, 404) else 422
        return _render(status, {approval_id: errors}, {approval_id: note})
    amount = money(approval.amount_cents)
    kind = KIND_LABELS.get(approval.kind.value, approval.kind.value).lower()
    if decision == "approve":
        flash(f"Approved: the {kind} of {amount} is posted.", "success")
    else:
        flash(f"Declined: the {kind} of {amount} is not posted; the requester sees your note.", "success")
    return redirect(url_for("ui.approvals"), 303)


@bp.route("/approvals/<approval_id>/withdraw", methods=["POST"], endpoint="approval_withdraw")
@mutation()
def approval_withdraw(approval_id: str) -> Response:
    """The requester takes back a pending request; back to its claim."""
    session = db_session()
    approval = approvals.get_approval(session, approval_id)
    claim = session.get(Claim, approval.claim_id) if approval.claim_id else None
    target = url_for("ui.claim", claim_id=claim.public_id) if claim is not None else url_for("ui.home")
    try:
        approvals.withdraw(session, approval, by=current_user())
    except ApiError as exc:
        session.rollback()
        flash(exc.errors[0].get("message", exc.detail) if exc.errors else exc.detail, "error")
        return redirect(target, 303)
    flash(f"The request for {money(approval.amount_cents)} was withdrawn; nothing was posted.", "success")
    return redirect(target, 303)


@bp.app_context_processor
def _pending_count() -> dict[str, Any]:
    """``ui_approvals_pending``: how many requests wait, for the navigation (deciders only)."""
    if request.blueprint != "ui":
        return {}
    principal = current_principal()
    if not principal.is_staff or principal.role not in approvals.APPROVER_ROLES:
        return {}
    try:
        return {"ui_approvals_pending": approvals.pending_count(db_session())}
    except SQLAlchemyError:  # an error page after a failed transaction: the badge is not worth a 500
        log.warning("approval count unavailable", extra={"request_id": g.get("request_id")})
        return {}


@bp.app_template_global("approvals_of_item")
def approvals_of_item(item: Any) -> dict[str, Any]:
    """For a work item's page: its claim's write-offs waiting for approval, and, for an item of
    the approval queue, its request (the page links to Approvals)."""
    from claims_server.ledger.write_offs import pending_requests
    from claims_server.models.workqueue import ApprovalRequest

    session = db_session()
    pending = []
    if item.claim is not None:
        pending = [approvals.view_of(session, a) for a in pending_requests(session, item.claim)]
    own = session.get(ApprovalRequest, item.approval_request_id) if item.approval_request_id else None
    return {"pending": pending, "request": approvals.view_of(session, own) if own is not None else None}
