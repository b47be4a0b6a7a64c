"""``/api/v1/approvals``: write-offs and refunds above the requester's limit, for a supervisor.

Thin views over ``claims_server.ledger.approvals``:

- ``GET /api/v1/approvals?state=pending|approved|declined|withdrawn|all&kind=write_off|refund``
- ``GET /api/v1/approvals/{id}``
- ``POST /api/v1/approvals/{id}/decision`` ``{"decision": "approve"|"decline", "note": ...}``
  (billing supervisors and admins; never one's own request; 409 when someone decided first)
- ``POST /api/v1/approvals/{id}/withdrawal`` (the requester, while it is pending)

A request is made by the action itself: ``POST /api/v1/claims/{id}/write-offs`` above the
biller limit answers 202 with the request (``ledger.views``). Billers read their own
requests; supervisors, admins and auditors read all.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.api_common.openapi import money_out, public_id_out
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import NotFound
from claims_server.ledger import approvals
from claims_server.models import User
from claims_server.models.workqueue import ApprovalKind, ApprovalRequest, ApprovalState
from claims_server.security.principal import current_principal

blp = Blueprint(
    "approvals",
    __name__,
    url_prefix="/api/v1",
    description="Write-offs and refunds above the requester's limit: a supervisor approves (it posts as "
    "theirs) or declines with a note; exactly one decision per request.",
)

#: Roles that read every request (billers read their own).
READ_ALL_ROLES = frozenset({"billing_supervisor", "admin", "auditor"})


class ApprovalArgsSchema(Schema):
    state = fields.String(
        load_default=ApprovalState.PENDING.value,
        validate=validate.OneOf([s.value for s in ApprovalState] + ["all"]),
    )
    kind = fields.String(load_default=None, validate=validate.OneOf([k.value for k in ApprovalKind]))


class ApprovalDecisionInSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "decline"]))
    note = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=approvals.MAX_NOTE),
        metadata={"description": "required to decline"},
    )


class ApprovalOutSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in ApprovalKind]))
    state = fields.String(required=True, validate=validate.OneOf([s.value for s in ApprovalState]))
    amount = money_out(required=True)
    claim_id = public_id_out(required=True, allow_none=True)
    patient_id = public_id_out(required=True, allow_none=True)
    payer_id = public_id_out(required=True, allow_none=True)
    request = fields.Dict(required=True, metadata={"description": "the action's parameters (codes, ids)"})
    note = fields.String(required=True, allow_none=True)
    requested_by = public_id_out(required=True, allow_none=True)
    requested_at = fields.DateTime(required=True, allow_none=True)
    decided_by = public_id_out(required=True, allow_none=True)
    decided_at = fields.DateTime(required=True, allow_none=True)
    decision_note = fields.String(required=True, allow_none=True)
    journal_entry_id = public_id_out(required=True, allow_none=True)


class ApprovalListSchema(Schema):
    items = fields.List(fields.Nested(ApprovalOutSchema), required=True)


def _me() -> User:
    session = db_session()
    user_id = current_principal().user_id
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:  # an integration token: no person to approve or withdraw as
        raise approvals.Forbidden(
            "approvals are decided by people signed in",
            errors=[{"field": "decision", "rule": "user", "message": "sign in as a supervisor"}],
        )
    return user


def _readable(approval: ApprovalRequest) -> ApprovalRequest:
    principal = current_principal()
    if principal.role not in READ_ALL_ROLES and approval.requested_by_user_id != principal.user_id:
        raise NotFound("no approval request has this id")
    return approval


def _json(approval: ApprovalRequest) -> dict[str, Any]:
    return approvals.view_of(db_session(), approval).to_json_dict()


@blp.route("/approvals", methods=["GET"], endpoint="list_approvals")
@mutation()
@blp.arguments(ApprovalArgsSchema, location="query")
@blp.alt_response(200, schema=ApprovalListSchema, success=True)
def list_approvals(args: dict[str, Any]) -> dict[str, Any]:
    """Approval requests (pending by default, the longest waiting first); billers see their own."""
    session = db_session()
    principal = current_principal()
    mine = None
    if principal.role not in READ_ALL_ROLES:
        mine = session.get(User, principal.user_id) if principal.user_id is not None else None
        if mine is None:
            return {"items": []}
    found = approvals.list_approvals(
        session, state=None if args["state"] == "all" else args["state"], kind=args["kind"], requested_by=mine
    )
    return {"items": [_json(a) for a in found]}


@blp.route("/approvals/<approval_id>", methods=["GET"], endpoint="get_approval")
@mutation()
@blp.alt_response(200, schema=ApprovalOutSchema, success=True)
def get_approval(approval_id: str) -> dict[str, Any]:
    """One approval request."""
    return _json(_readable(approvals.get_approval(db_session(), approval_id)))


@blp.route("/approvals/<approval_id>/decision", methods=["POST"], endpoint="decide_approval")
@mutation()
@blp.arguments(ApprovalDecisionInSchema)
@blp.alt_response(200, schema=ApprovalOutSchema, description="the decided request", success=True)
def decide_approval(data: dict[str, Any], approval_id: str) -> dict[str, Any]:
    """Approve (post the action as the approver) or decline (note required) a pending request."""
    session = db_session()
    approval = approvals.get_approval(session, approval_id)
    approvals.decide(session, approval, approve=data["decision"] == "approve", by=_me(), note=data["note"])
    return _json(approval)


@blp.route("/approvals/<approval_id>/withdrawal", methods=["POST"], endpoint="withdraw_approval")
@mutation()
@blp.alt_response(200, schema=ApprovalOutSchema, description="the withdrawn request", success=True)
def withdraw_approval(approval_id: str) -> dict[str, Any]:
    """Take back one's own pending request; nothing is posted."""
    session = db_session()
    approval = _readable(approvals.get_approval(session, approval_id))
    approvals.withdraw(session, approval, by=_me())
    return _json(approval)
