"""``/api/v1/held-adjudications`` and ``/api/v1/remittances/<id>/decision``: the possible-duplicate queue.

A held adjudication (a second original adjudication of a claim by the same payer, with
no reversal between: docs/adjudication-history.md) is listed beside the current one it
would duplicate; a supervisor posts it (it replaces the current one) or rejects it. Its
id is the public id of its ``possible_duplicate`` work item (a claim payment has no public
id of its own); a remittance held as a whole is decided by its own public id. Both
decisions are a billing supervisor's or an admin's (``security/policy.py``), answered 409
with nothing changed when the engine refuses (no longer held, already decided, or posting
would leave a payer's A/R below zero).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from claims_server.api_common.openapi import money_out, public_id_out
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.remittance import held
from claims_server.remittance.services import get_remittance
from claims_server.security.principal import current_principal

blp = Blueprint(
    "held_adjudications",
    __name__,
    url_prefix="/api/v1",
    description="The possible-duplicate remittance queue: adjudications held because they repeat one "
    "already posted, shown beside it, and a supervisor's decision to post or reject them.",
)


class DecisionInSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(held.DECISIONS),
        metadata={"description": "post: replace the current adjudication; reject: undo the hold"},
    )


class AdjudicationOutSchema(Schema):
    class Meta:
        ordered = True

    remittance = public_id_out(required=True)
    position = fields.Integer(required=True, metadata={"description": "the CLP's order in the 835"})
    state = fields.String(allow_none=True, required=True)
    kind = fields.String(allow_none=True, required=True)
    status_code = fields.String(required=True, metadata={"description": "CLP02"})
    charge = money_out(required=True, metadata={"description": "CLP03"})
    paid = money_out(required=True, metadata={"description": "CLP04"})
    patient_responsibility = money_out(allow_none=True, required=True, metadata={"description": "CLP05"})
    payer_claim_control_number = fields.String(
        allow_none=True, required=True, metadata={"description": "CLP07"}
    )
    trace_number = fields.String(required=True, metadata={"description": "TRN02"})
    payment_date = fields.String(allow_none=True, required=True)
    received_at = fields.String(allow_none=True, required=True)
    decided_at = fields.String(allow_none=True, required=True)
    decided_by = fields.String(allow_none=True, required=True)


class HeldAdjudicationSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(allow_none=True, required=True)  # its possible-duplicate work item's id
    work_item_status = fields.String(allow_none=True, required=True)
    claim = public_id_out(allow_none=True, required=True)
    claim_state = fields.String(allow_none=True, required=True)
    patient_control_number = fields.String(required=True, metadata={"description": "CLP01"})
    payer = public_id_out(allow_none=True, required=True)
    payer_name = fields.String(allow_none=True, required=True)
    remittance_held = fields.Boolean(required=True, metadata={"description": "the whole 835 is held"})
    held = fields.Nested(AdjudicationOutSchema, required=True)
    current = fields.Nested(AdjudicationOutSchema, allow_none=True, required=True)


class HeldRemittanceSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(required=True)
    work_item = public_id_out(allow_none=True, required=True)  # its possible-duplicate item
    state = fields.String(required=True)
    trace_number = fields.String(required=True)
    payer = public_id_out(allow_none=True, required=True)
    payer_name = fields.String(allow_none=True, required=True)
    payment = money_out(required=True)
    payment_date = fields.String(allow_none=True, required=True)
    received_at = fields.String(allow_none=True, required=True)
    claims = fields.Integer(required=True)
    held_claims = fields.Integer(required=True)


class HeldPageSchema(PageSchema):
    items = fields.List(fields.Nested(HeldAdjudicationSchema), required=True)
    held_remittances = fields.List(
        fields.Nested(HeldRemittanceSchema),
        required=True,
        metadata={"description": "remittances held as a whole (first page only)"},
    )


class ItemDecisionOutSchema(Schema):
    class Meta:
        ordered = True

    id = public_id_out(required=True)
    decision = fields.String(required=True)
    work_item_status = fields.String(required=True)
    adjudication = fields.Nested(AdjudicationOutSchema, allow_none=True, required=True)
    remittance = public_id_out(allow_none=True, required=True)
    remittance_state = fields.String(allow_none=True, required=True)
    outcome = fields.Dict(required=True, metadata={"description": "what the posting engine did"})


class RemittanceDecisionOutSchema(Schema):
    class Meta:
        ordered = True

    remittance = fields.Nested(HeldRemittanceSchema, required=True)
    decision = fields.String(required=True)
    outcome = fields.Dict(required=True, metadata={"description": "what the posting engine did"})


def _actor() -> str:
    """Who decides, for ``claim_payments.decided_by``: the signed-in username (never PHI)."""
    return current_principal().name[:100]


@blp.route("/held-adjudications", methods=["GET"], endpoint="list_held_adjudications")
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, HeldPageSchema)
def list_held_adjudications(args: dict[str, Any]) -> dict[str, Any]:
    """Adjudications held as possible duplicates, each beside the current one it would duplicate
    (CLP02, CLP03, CLP04, CLP05, CLP07, trace number, remittance, received date; no patient names)."""
    session = db_session()
    page = held.list_held(session, limit=args["limit"], cursor=args["cursor"])
    remittances = held.held_remittances(session) if args["cursor"] is None else []
    return {
        "items": [c.to_json() for c in held.compare(session, page.items)],
        "held_remittances": [held.held_remittance_json(session, r) for r in remittances],
        "next_cursor": page.next_cursor,
    }


@blp.route("/held-adjudications/<item_id>/decision", methods=["POST"], endpoint="decide_held_adjudication")
@mutation(idempotent=True)
@blp.arguments(DecisionInSchema)
@blp.response(200, ItemDecisionOutSchema)
@blp.alt_response(404, description="no possible-duplicate work item has this id")
@blp.alt_response(409, description="not held any more, already decided, or posting would overdraw")
def decide_held_adjudication(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Post (replace the current adjudication) or reject (undo the hold) one held adjudication;
    supervisors and admins."""
    session = db_session()
    item = held.get_item(session, item_id)
    outcome = held.decide_item(session, item, data["decision"], actor=_actor())
    return {**held.item_state(session, item), "decision": data["decision"], "outcome": outcome}


@blp.route("/remittances/<remittance_id>/decision", methods=["POST"], endpoint="decide_held_remittance")
@mutation(idempotent=True)
@blp.arguments(DecisionInSchema)
@blp.response(200, RemittanceDecisionOutSchema)
@blp.alt_response(404, description="no remittance has this id")
@blp.alt_response(409, description="the remittance is not held, or posting would overdraw")
def decide_held_remittance(data: dict[str, Any], remittance_id: str) -> dict[str, Any]:
    """Post or reject a remittance held as a whole (every claim repeated a posted adjudication):
    each of its held claims is decided; supervisors and admins."""
    session = db_session()
    remittance = get_remittance(session, remittance_id)
    outcome = held.decide_remittance(session, remittance, data["decision"], actor=_actor())
    session.flush()
    session.refresh(remittance)
    return {
        "remittance": held.held_remittance_json(session, remittance),
        "decision": data["decision"],
        "outcome": outcome,
    }
