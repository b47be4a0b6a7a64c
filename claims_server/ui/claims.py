"""Claims: a list (state, payer, claim control number) and the claim screen with its actions.

The claim screen shows the scrubber's findings next to the field they concern (a finding's
path, e.g. ``lines[1].ndc``, is mapped to the form field ``line-1-ndc``), the history of
states (the audit trail) and of files (837 batch, 999, 277CA, 835), and only the actions
the claim's state and the user's role allow. Every change goes through the services the
API uses (claims, corrections, secondary); a refused change is shown on the page and
rolled back whole.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, current_app, flash, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import func, select

from claims_server.api_common.fields import cents_to_money, money_text_to_cents
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims import state
from claims_server.claims.notes import NOTE_KEY, notes_by_public_id
from claims_server.claims.schemas import ClaimInSchema, ClaimOutSchema, ServiceLineSchema
from claims_server.claims.services import (
    claim_to_json,
    flatten_errors,
    get_claim,
    make_ready,
    transition,
    update_claim,
)
from claims_server.corrections import appeals as appeal_services
from claims_server.corrections import services as corrections
from claims_server.errors import ApiError, Unprocessable
from claims_server.ledger import approvals, write_offs
from claims_server.ledger.views import WriteOffInSchema, approval_limit
from claims_server.models import (
    Ack999Result,
    AuditAction,
    AuditEvent,
    BatchClaim,
    Claim,
    ClaimPayment,
    ClaimState,
    ClaimStatusEvent,
    EdiFile,
    Payer,
    User,
    WorkItem,
)
from claims_server.models.workqueue import Appeal, AppealStatus, ApprovalState, WorkItemStatus
from claims_server.remittance.claim_detail import claim_remittance_detail
from claims_server.secondary.services import create_next_payer_claim, next_coverage, next_payer_claim
from claims_server.security.enforce import refuse
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, field_errors, money, page

MAX_DIAGNOSES = 12
#: Fields of a service line the screen edits (the rest keep their stored values).
LINE_FIELDS = ("procedure", "modifiers", "charge", "units", "service_date", "diagnosis_pointers", "ndc")
#: Claim-level fields the screen edits.
CLAIM_FIELDS = ("place_of_service", "prior_authorization", "referral_number")
_CCN = re.compile(r"^[A-Za-z0-9-]{1,50}$")


def form_name(path: str) -> str:
    """A claim JSON path (``lines[1].ndc``, ``diagnoses[0]``) as the form field name."""
    path = path.replace(".", "[", 1) if path.startswith("lines.") else path
    line = re.match(r"^lines\[(\d+)\][.\[]?(\w+)", path)
    if line:
        return f"line-{line.group(1)}-{line.group(2)}"
    dx = re.match(r"^diagnoses\[(\d+)\]", path)
    if dx:
        return f"dx-{dx.group(1)}"
    return path


def _section(path: str) -> str:
    if path.startswith("lines"):
        return "_lines"
    if path.startswith("diagnoses"):
        return "_diagnoses"
    return "_claim"


def findings_by_field(findings: list[dict[str, Any]], fields: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Findings keyed by the form field they concern; others by section (``_lines``, ``_diagnoses``, ``_claim``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        if finding.get("severity") == "info":
            continue
        name = form_name(str(finding.get("path") or ""))
        out.setdefault(name if name in fields else _section(name), []).append(finding)
    return out


# -- reading -----------------------------------------------------------------------------------


@dataclass
class HistoryRow:
    at: datetime | None
    what: str
    detail: str


def state_history(claim: Claim) -> list[HistoryRow]:
    """The claim's audited changes (states, edits, corrections), oldest first. Reads of the
    claim are left out: they are access records, counted by ``times_viewed``."""
    events = db_session().scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity_type == "claim",
            AuditEvent.entity_id == claim.public_id,
            AuditEvent.action != AuditAction.READ,
        )
        .order_by(AuditEvent.id)
    )
    events = list(events)
    # A user's reason is a claim note the event names (encrypted; older events hold it in
    # ``reason``); a code's reason ("clean scrub at creation") is in the event itself.
    notes = notes_by_public_id(
        db_session(), [str(e.details[NOTE_KEY]) for e in events if (e.details or {}).get(NOTE_KEY)]
    )
    rows = []
    for event in events:
        details = event.details or {}
        detail = f"{details.get('from', '')} → {details.get('to', '')}" if "to" in details else ""
        reasons = [details.get("reason")]
        note = notes.get(str(details.get(NOTE_KEY)))
        reasons.append(note.note if note is not None else None)
        said = "; ".join(r for r in reasons if r)
        if said:
            detail = f"{detail} ({said})".strip()
        rows.append(
            HistoryRow(event.occurred_at, event.event_type.removeprefix("claim.").replace("_", " "), detail)
        )
    return rows


def times_viewed(claim: Claim) -> int:
    """How many audited reads of the claim there have been (the audit log says who and when)."""
    return (
        db_session().scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.entity_type == "claim",
                AuditEvent.entity_id == claim.public_id,
                AuditEvent.action == AuditAction.READ,
            )
        )
        or 0
    )


def file_history(claim: Claim) -> list[HistoryRow]:
    """Files about the claim: its 837 batches, their 999s, 277CA statuses and 835 payments."""
    session = db_session()
    rows: list[HistoryRow] = []
    batch_ids = list(session.scalars(select(BatchClaim.batch_id).where(BatchClaim.claim_id == claim.id)))
    if batch_ids:
        for file in session.scalars(
            select(EdiFile).where(EdiFile.batch_id.in_(batch_ids)).order_by(EdiFile.received_at)
        ):
            rows.append(
                HistoryRow(
                    file.received_at,
                    f"{file.kind.value} {file.direction.value}",
                    f"interchange {file.interchange_control_number or '—'}, {file.status.value}",
                )
            )
        for ack in session.scalars(
            select(Ack999Result).where(
                Ack999Result.batch_id.in_(batch_ids), Ack999Result.transaction_set_id.is_not(None)
            )
        ):
            code = {"A": "accepted", "E": "accepted with errors", "R": "rejected"}.get(
                ack.acknowledgment_code, ack.acknowledgment_code
            )
            rows.append(
                HistoryRow(
                    ack.created_at,
                    "999 acknowledgment",
                    f"transaction {ack.transaction_control_number}: {code}",
                )
            )
    for status in session.scalars(select(ClaimStatusEvent).where(ClaimStatusEvent.claim_id == claim.id)):
        rows.append(
            HistoryRow(
                status.created_at,
                "277CA claim status",
                f"{status.category_code}:{status.status_code}"
                + (f" — {status.free_text}" if status.free_text else ""),
            )
        )
    for payment in session.scalars(select(ClaimPayment).where(ClaimPayment.claim_id == claim.id)):
        rows.append(
            HistoryRow(
                payment.created_at,
                "835 payment",
                f"status {payment.status_code}, paid {money(payment.paid_cents)} of "
                f"{money(payment.charge_cents)}, payer claim {payment.payer_claim_control_number or '—'}",
            )
        )
    return sorted(rows, key=lambda row: row.at.timestamp() if row.at else 0.0)


def _can(endpoint: str) -> bool:
    rule = rule_for(endpoint)
    return rule is not None and current_principal().role in rule.roles


def may_resubmit(claim: Claim) -> bool:
    """Whether the user may "save and resubmit": the API's rules for the same change.

    Over the API it is ``PUT`` the claim, then (rejected) ``POST .../correct``, then
    ``POST .../ready``; the screen passes the same policy entries, so the two paths agree.
    """
    needed = ["claims.update_claim", "claims.transition_ready"]
    if ClaimState(claim.state) == ClaimState.REJECTED:
        needed.append("claims.transition_correct")
    return all(_can(endpoint) for endpoint in needed)


def allowed_actions(claim: Claim) -> dict[str, bool]:
    """Which of the screen's actions the claim's state and the user's role allow."""
    session = db_session()
    current = ClaimState(claim.state)
    adjudicated = current in corrections.ADJUDICATED_STATES
    superseded = adjudicated and corrections._superseding(session, claim) is not None
    live_appeal = session.scalar(
        select(Appeal.id).where(
            Appeal.claim_id == claim.id, Appeal.status.in_((AppealStatus.DRAFT, AppealStatus.SUBMITTED))
        )
    )
    return {
        "edit": current in state.EDITABLE_STATES and _can("ui.claim_save"),
        "resubmit": current in state.EDITABLE_STATES and _can("ui.claim_save") and may_resubmit(claim),
        "ready": current == ClaimState.DRAFT and _can("ui.claim_ready"),
        "replacement": adjudicated and not superseded and _can("ui.claim_replacement"),
        "void_local": "voided" in {s.value for s in state.allowed_next(current)}
        and current != ClaimState.DENIED
        and _can("ui.claim_void"),
        "void_payer": adjudicated and not superseded and _can("ui.claim_void"),
        "appeal": adjudicated and live_appeal is None and _can("ui.claim_appeal"),
        "next_payer": current in (ClaimState.PAID, ClaimState.PARTIALLY_PAID, ClaimState.DENIED)
        and next_coverage(session, claim) is not None
        and next_payer_claim(session, claim) is None
        and _can("ui.claim_next_payer"),
        # Not while an appeal is live: the appeal may still recover the money (docs/appeals.md).
        "write_off": live_appeal is None
        and _can("ui.claim_write_off")
        and any(cents > 0 for cents in write_offs.open_balances(session, claim).values()),
    }


def _render_claim(
    claim: Claim,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: Any = None,
    write_off_values: dict[str, str] | None = None,
) -> Response:
    session = db_session()
    doc = ClaimOutSchema().dump(claim_to_json(claim))
    fields = {*CLAIM_FIELDS, *(f"dx-{i}" for i in range(MAX_DIAGNOSES))}
    fields |= {f"line-{i}-{name}" for i in range(len(doc["lines"])) for name in LINE_FIELDS}
    items = session.scalars(
        select(WorkItem).where(WorkItem.claim_id == claim.id, WorkItem.status != WorkItemStatus.RESOLVED)
    ).all()
    from claims_server.workqueue.services import explanation_of

    written_off = write_offs.list_write_offs(session, claim)
    states = state_history(claim) + [HistoryRow(*row) for row in write_offs.history_rows(written_off)]
    return page(
        "claim.html",
        status,
        claim=claim,
        doc=doc,
        payer=claim.coverage.payer,
        findings=findings_by_field(list(claim.scrub_findings or []), fields),
        all_findings=[f for f in claim.scrub_findings or [] if f.get("severity") != "info"],
        actions=allowed_actions(claim),
        items=[(item, explanation_of(item)) for item in items],
        states=sorted(states, key=lambda row: row.at.timestamp() if row.at else 0.0),
        write_off=_write_off_form(claim, write_off_values),
        files=file_history(claim),
        times_viewed=times_viewed(claim),
        payments=corrections.payments_of(session, claim),
        appeals=appeal_services.claim_appeals(session, claim),
        remits=claim_remittance_detail(session, claim),
        errors=errors or {},
        values=values,
        max_diagnoses=MAX_DIAGNOSES,
    )


@bp.route("/claims/<claim_id>", methods=["GET"], endpoint="claim")
def claim_page(claim_id: str) -> Response:
    """The claim screen (a PHI view: the read is audited)."""
    return _render_claim(get_claim(db_session(), claim_id))


# -- the edit form -----------------------------------------------------------------------------


def _whole_number(text: str) -> int | str:
    """ASCII digits as an int; anything else as typed, for the schema to refuse next to the field
    (``int()`` also reads "²" or full-width digits, and raises on "abc")."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def document_from_form(claim: Claim, form: Any) -> dict[str, Any]:
    """The claim's JSON document with the form's fields applied, loaded (validated) by the API schema.

    Refused input raises ``Unprocessable`` whose errors name the form fields.
    """
    doc = ClaimOutSchema().dump(claim_to_json(claim))
    in_fields = {name for name, f in ClaimInSchema().fields.items() if not f.dump_only}
    line_fields = {name for name, f in ServiceLineSchema().fields.items() if not f.dump_only}
    for name in CLAIM_FIELDS:
        doc[name] = form.get(name, "").strip() or None
    doc["diagnoses"] = [
        code
        for i in range(MAX_DIAGNOSES)
        if (code := form.get(f"dx-{i}", "").strip().upper().replace(".", ""))
    ]
    lines = []
    for i, line in enumerate(doc["lines"]):
        if form.get(f"line-{i}-remove"):
            continue
        line = {k: v for k, v in line.items() if k in line_fields}
        line["procedure"] = form.get(f"line-{i}-procedure", "").strip().upper()
        line["modifiers"] = [
            m for m in form.get(f"line-{i}-modifiers", "").replace(",", " ").upper().split() if m
        ]
        line["charge"] = form.get(f"line-{i}-charge", "").strip().replace("$", "").replace(",", "")
        line["units"] = form.get(f"line-{i}-units", "").strip()
        line["service_date"] = form.get(f"line-{i}-service_date", "").strip()
        line["diagnosis_pointers"] = [
            _whole_number(p) for p in form.get(f"line-{i}-diagnosis_pointers", "").replace(",", " ").split()
        ]
        line["ndc"] = form.get(f"line-{i}-ndc", "").strip().replace("-", "") or None
        line["_form_index"] = i
        lines.append(line)
    doc["lines"] = lines
    doc["version"] = _whole_number(form.get("version", "") or "0")
    indexes = [line.pop("_form_index") for line in lines]
    try:
        loaded = ClaimInSchema().load({k: v for k, v in doc.items() if k in in_fields})
    except ValidationError as exc:
        errors = []
        for error in flatten_errors(exc.messages):
            path = str(error.get("field") or "")
            match = re.match(r"^lines\[(\d+)\](.*)$", path)
            if match:  # the loaded list skips removed lines: name the form's line
                path = f"lines[{indexes[int(match.group(1))]}]{match.group(2)}"
            errors.append({**error, "field": form_name(path)})
        raise Unprocessable("the claim has invalid fields", errors=errors) from None
    if not loaded["lines"]:
        raise Unprocessable(
            "a claim needs a line", errors=[{"field": "_lines", "message": "keep at least one line"}]
        )
    return loaded


#: What a stale save says (someone saved the claim between this form's GET and its POST).
STALE_SAVE_MESSAGE = (
    "This claim was changed by someone else since you opened it: reload to see the changes. "
    "Nothing of yours was saved; what you typed is still in the form below."
)


def stale_save_errors(errors: dict[str, str]) -> dict[str, str]:
    """A refused stale save's messages: the page-level message, and ``_stale`` so the form keeps
    the version it was opened at (saving again is refused again until the page is reloaded,
    instead of silently overwriting the other person's change)."""
    out = {k: v for k, v in errors.items() if k != "version"}
    out["_form"] = STALE_SAVE_MESSAGE
    out["_stale"] = "1"
    return out


def _to_claim(claim: Claim, message: str) -> Response:
    """After an action: ``message`` flashed as a success, and a 303 to ``claim``'s page."""
    flash(message, "success")
    return redirect(url_for("ui.claim", claim_id=claim.public_id), 303)


@bp.route("/claims/<claim_id>/edit", methods=["POST"], endpoint="claim_save")
@mutation()
def claim_save(claim_id: str) -> Response:
    """Save the edited fields (rescrubbed); with ``intent=resubmit`` also make it ready (fix and resubmit)."""
    session = db_session()
    claim = get_claim(session, claim_id)
    resubmit = request.form.get("intent") == "resubmit"
    if resubmit and not may_resubmit(claim):
        return refuse("your role may not correct and resubmit this claim; ask a billing supervisor")
    try:
        data = document_from_form(claim, request.form)
        if resubmit:
            corrections.resubmit_corrected(session, claim, data)
        else:
            update_claim(session, claim, data)
    except ApiError as exc:
        errors = {form_name(k): v for k, v in field_errors(exc).items()}
        if any(e.get("rule") == "current_version" for e in exc.errors):
            errors = stale_save_errors(errors)
        session.rollback()
        claim = get_claim(session, claim_id)
        return _render_claim(claim, 422, errors, request.form)
    if resubmit:
        return _to_claim(
            claim, "Corrected and ready: the claim goes out with the next batch and left the work queue."
        )
    return _to_claim(claim, "Saved and scrubbed again.")


@bp.route("/claims/<claim_id>/ready", methods=["POST"], endpoint="claim_ready")
@mutation()
def claim_ready(claim_id: str) -> Response:
    """draft → ready after a clean scrub."""
    session = db_session()
    claim = get_claim(session, claim_id)
    try:
        make_ready(session, claim, reason="ready from the workspace")
    except Unprocessable as exc:
        session.rollback()
        errors = {form_name(k): v for k, v in field_errors(exc).items()}
        errors.setdefault("_form", exc.detail)
        return _render_claim(get_claim(session, claim_id), 422, errors)
    return _to_claim(claim, "The claim is ready for the next batch.")


def _reason(name: str = "reason") -> str | None:
    reason = request.form.get(name, "").strip()
    if len(reason) > 200:
        raise Unprocessable(
            "the reason is too long", errors=[{"field": name, "message": "at most 200 characters"}]
        )
    return reason or None


@bp.route("/claims/<claim_id>/replacement", methods=["POST"], endpoint="claim_replacement")
@mutation()
def claim_replacement(claim_id: str) -> Response:
    """A draft corrected claim (frequency 7, REF*F8); the original's denial items are resolved."""
    session = db_session()
    copy = corrections.create_replacement_claim(session, get_claim(session, claim_id), reason=_reason())
    return _to_claim(
        copy,
        "A corrected claim (replacement) was created. Fix what the payer denied, then save and resubmit.",
    )


@bp.route("/claims/<claim_id>/void", methods=["POST"], endpoint="claim_void")
@mutation()
def claim_void(claim_id: str) -> Response:
    """Void: locally while nothing is with the payer, else a frequency-8 void claim to the payer."""
    session = db_session()
    claim = get_claim(session, claim_id)
    reason = _reason("void_reason")
    if ClaimState(claim.state) in corrections.ADJUDICATED_STATES:
        void = corrections.create_void_claim(session, claim, reason=reason)
        return _to_claim(
            void, "A void claim (frequency 8) was created; make it ready to send it to the payer."
        )
    transition(session, claim, "void", reason=reason)  # as the API's void: the reason is a claim note
    return _to_claim(claim, "The claim is voided.")


@bp.route("/claims/<claim_id>/appeal", methods=["POST"], endpoint="claim_appeal")
@mutation()
def claim_appeal(claim_id: str) -> Response:
    """A draft appeal with its filing deadline and a letter generated from the denial (unless one
    is typed); the claim's denial item moves to the appeal queue. Then the appeal's own page."""
    session = db_session()
    claim = get_claim(session, claim_id)
    letter = request.form.get("letter_text", "").strip() or None
    try:
        appeal = appeal_services.open_appeal(
            session,
            claim,
            letter_text=letter,
            default_days=int(
                current_app.config.get("APPEAL_DEADLINE_DAYS", appeal_services.DEFAULT_APPEAL_DAYS)
            ),
            user_id=current_principal().user_id,
        )
    except ApiError as exc:
        session.rollback()
        errors = field_errors(exc, {"claim": "_form", "determined": "_form"})
        return _render_claim(get_claim(session, claim_id), 422, errors)
    session.flush()
    flash(
        f"Appeal opened; file it by {appeal.deadline.isoformat()}. Check the letter, then submit it.",
        "success",
    )
    return redirect(url_for("ui.appeal", appeal_id=appeal.public_id), 303)


@bp.route("/claims/<claim_id>/next-payer", methods=["POST"], endpoint="claim_next_payer")
@mutation()
def claim_next_payer(claim_id: str) -> Response:
    """The draft claim to the patient's next coverage, with the prior payer's adjudication (COB)."""
    session = db_session()
    copy = create_next_payer_claim(session, get_claim(session, claim_id))
    return _to_claim(copy, "The secondary claim was created; check it and make it ready.")


# -- write-off --------------------------------------------------------------------------------

#: The write-off form's fields (prefixed: the claim screen has other forms with a ``reason``).
WRITE_OFF_FIELDS = {"amount": "wo_amount", "bucket": "wo_bucket", "reason": "wo_reason", "note": "wo_note"}


def _write_off_form(claim: Claim, values: Any) -> dict[str, Any]:
    """The write-off form: open balances, the reason list, and what the fields hold.

    The amount defaults to the open balance of the default bucket (insurance while a payer
    owes, else the patient's); a fresh idempotency key makes a double submit post once.
    """
    balances = write_offs.open_balances(db_session(), claim)
    bucket = write_offs.WriteOffBucket.INSURANCE
    if balances[bucket] <= 0:
        bucket = write_offs.WriteOffBucket.PATIENT
    form = {
        "wo_bucket": bucket.value,
        "wo_amount": money(max(balances[bucket], 0)).lstrip("$").replace(",", ""),
        "wo_reason": "",
        "wo_note": "",
        "wo_key": uuid.uuid4().hex,
    }
    if values:
        form.update({name: values.get(name, "") for name in form})
    return {
        "values": form,
        "balances": {b.value: cents for b, cents in balances.items()},
        "buckets": [
            (b.value, f"{b.value.capitalize()} ({money(cents)} open)")
            for b, cents in balances.items()
            if cents > 0
        ],
        "reasons": [(r.value, write_offs.REASON_LABELS[r]) for r in write_offs.WriteOffReason],
        # Write-offs above the biller limit waiting for a supervisor (ui/approvals.py).
        "pending": [
            approvals.view_of(db_session(), a) for a in write_offs.pending_requests(db_session(), claim)
        ],
        "declined": [
            approvals.view_of(db_session(), a)
            for a in write_offs.pending_requests(db_session(), claim, ApprovalState.DECLINED)
        ],
    }


@bp.route("/claims/<claim_id>/write-off", methods=["POST"], endpoint="claim_write_off")
@mutation()
def claim_write_off(claim_id: str) -> Response:
    """Write off all or part of the claim's insurance or patient balance, with a reason."""
    session = db_session()
    claim = get_claim(session, claim_id)
    form = {name: (request.form.get(name) or "").strip() for name in (*WRITE_OFF_FIELDS.values(), "wo_key")}
    try:
        if not form["wo_key"] or len(form["wo_key"]) > 64:
            raise Unprocessable(
                "the form is incomplete", errors=[{"message": "The form is incomplete; reload the page."}]
            )
        cents, problem = money_text_to_cents(form["wo_amount"])
        if cents is None:
            raise Unprocessable("the amount is not valid", errors=[{"field": "amount", "message": problem}])
        try:
            data = WriteOffInSchema().load(
                {"amount": cents_to_money(cents)}
                | {api: form[name] or None for api, name in WRITE_OFF_FIELDS.items() if api != "amount"}
            )
        except ValidationError as exc:
            from claims_server.ui.patients import _messages

            raise Unprocessable(
                "the write-off has invalid fields",
                errors=[{"field": k, "message": v} for k, v in _messages(exc).items()],
            ) from None
        done = write_offs.write_off_or_request(
            session,
            claim,
            amount_cents=data["amount"],
            bucket=data["bucket"],
            reason=data["reason"],
            note=data["note"],
            idempotency_key=idempotency_key_of(form["wo_key"]),
            approval_limit_cents=approval_limit(),
            requested_by=_signed_in(session),
        )
    except ApiError as exc:
        errors = field_errors(
            exc, aliases={**WRITE_OFF_FIELDS, "payer": "wo_bucket", "Idempotency-Key": "_form"}
        )
        session.rollback()
        return _render_claim(get_claim(session, claim_id), 422, errors, write_off_values=form)
    if isinstance(done, write_offs.WriteOffRequested):
        return _to_claim(
            claim,
            f"The write-off of {money(done.approval.amount_cents)} is above your limit: it was sent to a "
            "supervisor for approval. Nothing is posted until a supervisor approves it.",
        )
    if done.replayed:
        return _to_claim(
            claim, "This write-off was already posted (the form was sent twice); nothing was posted again."
        )
    return _to_claim(
        claim,
        f"Wrote off {money(done.amount_cents)} of the {done.bucket.value} balance "
        f"({write_offs.REASON_LABELS[done.reason].lower()}).",
    )


def _signed_in(session: Any) -> User | None:
    user_id = current_principal().user_id
    return session.get(User, user_id) if user_id is not None else None


def idempotency_key_of(form_key: str) -> str:
    """The form's key scoped to the signed-in user, like the API's Idempotency-Key."""
    from claims_server.api_common.transactions import principal_key

    return f"{principal_key()}:ui:{form_key}"[:255]


# -- the list ----------------------------------------------------------------------------------


@bp.route("/claims", methods=["GET"], endpoint="claims")
def claims_list() -> Response:
    """Claims by state and payer, or found by claim control number (ours, CLM01, or the payer's)."""
    session = db_session()
    states = [s for s in request.args.getlist("state") if s in {c.value for c in ClaimState}]
    payer = request.args.get("payer", "").strip()
    number = request.args.get("number", "").strip()
    errors: dict[str, str] = {}
    query = select(Claim).order_by(Claim.id.desc()).limit(200)
    if states:
        query = query.where(Claim.state.in_([ClaimState(s) for s in states]))
    if payer:
        payer_row = session.scalar(select(Payer).where(Payer.public_id == payer))
        if payer_row is None:
            errors["payer"] = "choose a payer from the list"
        else:
            from claims_server.models import Coverage

            query = query.where(
                Claim.coverage_id.in_(select(Coverage.id).where(Coverage.payer_id == payer_row.id))
            )
    if number:
        if not _CCN.match(number):
            errors["number"] = "a claim control number has letters, digits and dashes only"
        else:
            query = query.where(
                (Claim.patient_control_number == number.upper())
                | (Claim.payer_claim_control_number == number)
            )
    rows = [] if errors else list(session.scalars(query))
    return page(
        "claims.html",
        422 if errors else 200,
        rows=rows,
        errors=errors,
        state_options=[(s.value, s.value.replace("_", " ")) for s in ClaimState],
        selected_states=states,
        payer=payer,
        number=number,
        payer_options=[(p.public_id, p.name) for p in session.scalars(select(Payer).order_by(Payer.name))],
    )
