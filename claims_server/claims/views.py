"""``/api/v1/claims``: thin views over ``claims.services`` (one transaction per request)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims import notes, services
from claims_server.claims.schemas import (
    CLAIM_EXAMPLE,
    ClaimInSchema,
    ClaimListArgsSchema,
    ClaimNoteListSchema,
    ClaimOutSchema,
    ClaimPageSchema,
    TransitionSchema,
    ValidationResultSchema,
)

blp = Blueprint(
    "claims",
    __name__,
    url_prefix="/api/v1/claims",
    description="Claims with service lines: create, validate (scrub only), read, list, update, transitions. "
    'Money is a decimal string such as "125.00"; JSON numbers are refused for money.',
)

_CLAIM_BODY = {"example": CLAIM_EXAMPLE}


@blp.route("", methods=["GET"])
@blp.arguments(ClaimListArgsSchema, location="query")
@blp.response(200, ClaimPageSchema)
def list_claims(args: dict[str, Any]) -> dict[str, Any]:
    """List claims (filters: state, payer, patient, service and created ranges; cursor pages)."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    page = services.list_claims(db_session(), args, limit=limit, cursor=cursor)
    return {"items": [services.claim_to_json(c) for c in page.items], "next_cursor": page.next_cursor}


@blp.route("", methods=["POST"])
@mutation(idempotent=True)
@blp.arguments(ClaimInSchema, **_CLAIM_BODY)
@blp.response(201, ClaimOutSchema)
@blp.alt_response(409, description="patient_control_number already used")
@blp.alt_response(422, description="invalid fields, unknown references, or Idempotency-Key reused")
def create_claim(data: dict[str, Any]) -> dict[str, Any]:
    """Create a claim: stored as ready when ``ready`` is true and the scrub finds no error, else draft.

    Send ``Idempotency-Key`` to make retries safe: the same key and body replays the
    first answer; the same key with another body is a 422.
    """
    return services.claim_to_json(services.create_claim(db_session(), data).claim)


@blp.route("/validate", methods=["POST"])
@blp.arguments(ClaimInSchema, **_CLAIM_BODY)
@blp.response(200, ValidationResultSchema)
def validate_claim(data: dict[str, Any]) -> dict[str, Any]:
    """Scrub a claim without saving or sending it; findings carry the claim JSON's field paths."""
    session = db_session()
    try:
        return services.validate_claim(session, data)
    finally:
        session.rollback()


@blp.route("/<claim_id>", methods=["GET"])
@blp.response(200, ClaimOutSchema)
def get_claim(claim_id: str) -> dict[str, Any]:
    """Read a claim, with its state, allowed transitions and last scrub findings."""
    return services.claim_to_json(services.get_claim(db_session(), claim_id))


@blp.route("/<claim_id>", methods=["PUT"])
@mutation()
@blp.arguments(ClaimInSchema, **_CLAIM_BODY)
@blp.response(200, ClaimOutSchema)
@blp.alt_response(409, description="the claim is not editable in its state, or changed concurrently")
def update_claim(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    """Replace a draft, ready or rejected claim's data (it is scrubbed again)."""
    session = db_session()
    claim = services.get_claim(session, claim_id)
    return services.claim_to_json(services.update_claim(session, claim, data).claim)


@blp.route("/<claim_id>/notes", methods=["GET"])
@blp.response(200, ClaimNoteListSchema)
def list_claim_notes(claim_id: str) -> dict[str, Any]:
    """The claim's notes, oldest first: the reasons users gave for its changes (each audit event
    of such a change names its note by id). Reading them is audited as a read of the claim."""
    session = db_session()
    claim = services.get_claim(session, claim_id)
    return {"items": notes.notes_to_json(session, notes.list_notes(session, claim))}


def _transition_view(name: str, summary: str) -> None:
    @mutation()
    @blp.arguments(TransitionSchema, required=False)
    @blp.response(200, ClaimOutSchema)
    @blp.alt_response(409, description="the transition is not allowed from the claim's state")
    def view(data: dict[str, Any] | None, claim_id: str) -> dict[str, Any]:
        session = db_session()
        claim = services.get_claim(session, claim_id)
        reason = (data or {}).get("reason") or None
        return services.claim_to_json(services.transition(session, claim, name, reason=reason))

    view.__name__ = "transition_" + name.replace("-", "_")
    view.__doc__ = summary
    blp.route(f"/<claim_id>/{name}", methods=["POST"])(view)


_transition_view("ready", "Scrub and move draft → ready (422 with the findings when the scrub finds errors).")
_transition_view("return-to-draft", "Move ready → draft (to edit before batching).")
# Void is POST /claims/<id>/void in claims_server.corrections.views (in place, or a frequency-8 claim).
_transition_view("correct", "Correct a rejected claim (999/277CA, never adjudicated): rejected → draft.")
_transition_view("reopen", "Reopen a rejected or denied claim for correction (→ draft; supervisors).")
_transition_view("close", "Close a paid, partially paid or denied claim (final).")
