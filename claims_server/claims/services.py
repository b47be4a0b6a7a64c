"""Claim business rules, callable without HTTP (views, the CLI and the demo all use these).

Every function works in the caller's session and never commits: the caller's unit of
work (``mutation`` in a view, ``unit_of_work`` in the CLI) commits or rolls back the
whole request. Bad input raises :class:`~claims_server.errors.Unprocessable` naming
each field and rule; a move the state machine refuses raises ``Conflict``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Select, exists, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from claims_server.api_common.audit import audit
from claims_server.api_common.fields import PUBLIC_ID_PATTERN
from claims_server.api_common.pagination import Page, paginate
from claims_server.claims import notes, state
from claims_server.claims.schemas import ClaimInSchema
from claims_server.claims.scrub import scrub_claim, summary, to_json_findings
from claims_server.claims.to_edi import claim_load_options
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.models import (
    AuditAction,
    Claim,
    ClaimDiagnosis,
    ClaimFrequency,
    ClaimKind,
    ClaimState,
    Coverage,
    Patient,
    Payer,
    Provider,
    ServiceLine,
    UnitBasis,
)
from claims_server.models.common import utcnow
from claims_server.security.ownership import find_owned

_schema = ClaimInSchema()


@dataclass
class ClaimResult:
    """A stored claim and the findings of the scrub that ran when it was saved."""

    claim: Claim
    findings: list[dict[str, Any]]


def flatten_errors(messages: Any, prefix: str = "", location: str = "json") -> list[dict[str, Any]]:
    """Marshmallow messages → ``[{"field": "lines[0].charge", "location", "message"}]``."""
    out: list[dict[str, Any]] = []
    if isinstance(messages, dict):
        for key, sub in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out += flatten_errors(sub, path, location)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out += [{"field": prefix or None, "location": location, "message": m} for m in messages]
    elif isinstance(messages, list):
        for i, sub in enumerate(messages):
            out += flatten_errors(sub, f"{prefix}[{i}]", location)
    else:
        out.append({"field": prefix or None, "location": location, "message": str(messages)})
    return out


def load_claim_json(raw: Any) -> dict[str, Any]:
    """Validate a claim JSON document (as a client, the CLI or the demo sends it)."""
    if not isinstance(raw, Mapping):
        raise Unprocessable(
            "the claim must be a JSON object", errors=[{"field": None, "message": "not an object"}]
        )
    try:
        return _schema.load(dict(raw))
    except ValidationError as exc:
        raise Unprocessable("the claim has invalid fields", errors=flatten_errors(exc.messages)) from None


def _field_error(field: str, rule: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", errors=[{"field": field, "location": "json", "rule": rule, "message": message}]
    )


# -- references ---------------------------------------------------------------------------------


def _patient(session: Session, public_id: str) -> Patient:
    patient = find_owned(session, Patient, public_id)  # another integration's patient: as missing
    if patient is None:
        raise _field_error("patient", "exists", "no patient has this id")
    return patient


def _coverage(session: Session, patient: Patient, public_id: str | None, first_dos: date) -> Coverage:
    if public_id is not None:
        return choose_coverage([find_owned(session, Coverage, public_id)], patient, public_id, first_dos)
    candidates = session.scalars(
        select(Coverage).where(Coverage.patient_id == patient.id, Coverage.coverage_order == 1)
    ).all()
    return choose_coverage(candidates, patient, None, first_dos)


def choose_coverage(
    candidates: Sequence[Coverage | None], patient: Patient, public_id: str | None, first_dos: date
) -> Coverage:
    """The claim's coverage among ``candidates`` (coverages the caller may see): the one named
    by ``public_id`` if it is the patient's, else the latest-starting primary effective on the
    first date of service; 422 naming ``coverage`` when there is none."""
    if public_id is not None:
        named = next((c for c in candidates if c is not None and c.public_id == public_id), None)
        if named is None or named.patient_id != patient.id:
            raise _field_error("coverage", "exists", "the patient has no coverage with this id")
        return named
    primaries = [
        c for c in candidates if c is not None and c.coverage_order == 1 and c.patient_id == patient.id
    ]
    for coverage in sorted(primaries, key=lambda c: c.effective_start, reverse=True):
        if coverage.is_effective_on(first_dos):
            return coverage
    raise _field_error(
        "coverage",
        "primary_coverage",
        "the patient has no primary coverage effective on the first date of service",
    )


def resolve_provider(session: Session, practice_id: int, ref: str | None, field: str) -> Provider | None:
    """A provider of the practice by ``public_id`` or NPI; 422 naming ``field`` when unknown."""
    if ref is None:
        return None
    column = Provider.public_id if PUBLIC_ID_PATTERN.match(ref) else Provider.npi
    provider = session.scalar(select(Provider).where(Provider.practice_id == practice_id, column == ref))
    return check_provider(provider, field)


def check_provider(provider: Provider | None, field: str) -> Provider:
    """``provider`` when it exists and is active; else 422 naming ``field``."""
    if provider is None:
        raise _field_error(field, "exists", "no provider of the practice has this id or NPI")
    if not provider.active:
        raise _field_error(field, "active", "the provider is inactive")
    return provider


def _original_claim(session: Session, public_id: str | None, patient: Patient) -> Claim | None:
    if public_id is None:
        return None
    original = find_owned(session, Claim, public_id)
    if original is None or original.patient_id != patient.id:
        raise _field_error("original_claim", "exists", "the patient has no claim with this id")
    return original


class ClaimReferences:
    """How :func:`apply_claim_data` finds what a claim document names: one query per reference.

    A caller that builds thousands of claims (``claims.charge_import``) passes a subclass that
    answers from rows it loaded once; the rules (ownership, the default coverage, an active
    provider of the practice) and their 422s stay the ones written here.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def patient(self, public_id: str) -> Patient:
        return _patient(self.session, public_id)

    def coverage(self, patient: Patient, public_id: str | None, first_dos: date) -> Coverage:
        return _coverage(self.session, patient, public_id, first_dos)

    def provider(self, practice_id: int, ref: str | None, field: str) -> Provider | None:
        return resolve_provider(self.session, practice_id, ref, field)

    def original_claim(self, public_id: str | None, patient: Patient) -> Claim | None:
        return _original_claim(self.session, public_id, patient)


def new_patient_control_number() -> str:
    """CLM01: 'C' + 14 hex digits (15 characters: under the 17 many payers keep, unguessable)."""
    return "C" + secrets.token_hex(7).upper()


# -- building and updating ----------------------------------------------------------------------


def apply_claim_data(
    session: Session, claim: Claim, data: Mapping[str, Any], *, refs: ClaimReferences | None = None
) -> Claim:
    """Set ``claim``'s fields, diagnoses and lines from loaded claim JSON.

    Lines and diagnoses are updated in place by position (then extras removed), so the
    ``(claim_id, line_number)`` and ``(claim_id, position)`` unique constraints never
    see two rows for one position inside a flush. ``refs`` resolves the patient, coverage,
    providers and original claim (default: one query each). The values themselves are
    :func:`claim_values`'s.
    """
    with session.no_autoflush:
        return _apply(claim, data, refs or ClaimReferences(session))


@dataclass
class ClaimValues:
    """What the claim rules make of a loaded claim document, attribute by attribute.

    ``claim``: the claim's attributes (relationships with their ids); ``diagnoses``: each
    diagnosis's ``position``, ``code`` and ``qualifier``; ``lines``: each line's
    ``line_number`` and attributes. :func:`apply_claim_data` sets them on ORM objects;
    the charge import builds its transient claims from them (``claims.charge_import``).
    """

    claim: dict[str, Any]
    diagnoses: list[dict[str, Any]]
    lines: list[dict[str, Any]]


_PARTIES = ("rendering_provider", "referring_provider", "supervising_provider", "facility_provider")


def claim_values(
    data: Mapping[str, Any],
    refs: ClaimReferences,
    *,
    patient_control_number: str | None,
    current_patient_id: int | None = None,
) -> ClaimValues:
    """The claim rules: references resolved (``refs``: patient, coverage, providers, original
    claim, each refused with its 422), the diagnoses' qualifiers, each line's control number
    (``{patient_control_number}-{n}`` unless given), modifiers and pointers, CLM02 = Σ SV102.

    ``current_patient_id``: the patient of the claim being updated (a claim's patient cannot change).
    """
    first_dos = min(line["service_date"] for line in data["lines"])
    patient = refs.patient(data["patient"])
    if current_patient_id is not None and current_patient_id != patient.id:
        raise _field_error(
            "patient", "immutable", "a claim's patient cannot change; void it and create another"
        )
    coverage = refs.coverage(patient, data.get("coverage"), first_dos)
    practice_id = patient.practice_id
    original = refs.original_claim(data.get("original_claim"), patient)
    providers = {name: refs.provider(practice_id, data.get(name), name) for name in _PARTIES}
    claim = {
        "patient": patient,
        "patient_id": patient.id,
        "practice": patient.practice,
        "practice_id": practice_id,
        "coverage": coverage,
        "coverage_id": coverage.id,
        "coverage_order": coverage.coverage_order,
        "claim_kind": ClaimKind(data["claim_kind"]),
        "frequency_code": ClaimFrequency(data["frequency_code"]),
        "original_claim": original,
        "original_claim_id": original.id if original is not None else None,
        "payer_claim_control_number": data.get("payer_claim_control_number"),
        "place_of_service": data.get("place_of_service"),
        "facility_type_code": data.get("facility_type_code"),
        **providers,
        **{f"{name}_id": p.id if p is not None else None for name, p in providers.items()},
        "prior_authorization": data.get("prior_authorization"),
        "referral_number": data.get("referral_number"),
        "related_causes": list(data.get("related_causes") or []) or None,
        "accident_state": data.get("accident_state"),
        "onset_date": data.get("onset_date"),
        "accident_date": data.get("accident_date"),
        "total_charge_cents": sum(item["charge"] for item in data["lines"]),  # CLM02 = Σ SV102
    }
    diagnoses = [
        # TR3 HI: the principal diagnosis ABK, the others ABF.
        {"position": position, "code": code, "qualifier": "ABK" if position == 1 else "ABF"}
        for position, code in enumerate(data["diagnoses"], start=1)
    ]
    lines = []
    for number, item in enumerate(data["lines"], start=1):
        rendering = refs.provider(
            practice_id, item.get("rendering_provider"), f"lines[{number - 1}].rendering_provider"
        )
        modifiers = [*item.get("modifiers", []), None, None, None, None][:4]
        lines.append(
            {
                "line_number": number,
                "line_control_number": item.get("line_control_number")
                or f"{patient_control_number}-{number}",
                "procedure_qualifier": "HC",
                "procedure_code": item["procedure"],
                "modifier1": modifiers[0],
                "modifier2": modifiers[1],
                "modifier3": modifiers[2],
                "modifier4": modifiers[3],
                "description": item.get("description"),
                "revenue_code": item.get("revenue_code"),
                "charge_cents": item["charge"],
                "unit_basis": UnitBasis(item["unit_basis"]),
                "units": item["units"],
                "place_of_service": item.get("place_of_service"),
                "diagnosis_pointers": ",".join(str(p) for p in item["diagnosis_pointers"]),
                "service_date_from": item["service_date"],
                "service_date_to": item.get("service_date_end"),
                "ndc": item.get("ndc"),
                "drug_quantity": item.get("drug_quantity"),
                "drug_unit": item.get("drug_unit"),
                "rendering_provider": rendering,
                "rendering_provider_id": rendering.id if rendering is not None else None,
            }
        )
    return ClaimValues(claim, diagnoses, lines)


def _apply(claim: Claim, data: Mapping[str, Any], refs: ClaimReferences) -> Claim:
    values = claim_values(
        data,
        refs,
        patient_control_number=claim.patient_control_number,
        current_patient_id=claim.patient_id,
    )
    _assign(claim, values.claim, fresh=inspect(claim).transient)

    diagnoses = list(claim.diagnoses)
    for item in values.diagnoses:
        position = item["position"]
        if position <= len(diagnoses):
            diagnoses[position - 1].code, diagnoses[position - 1].qualifier = item["code"], item["qualifier"]
        else:
            claim.diagnoses.append(ClaimDiagnosis(**item))
    del claim.diagnoses[len(values.diagnoses) :]

    lines = list(claim.service_lines)
    for number, item in enumerate(values.lines, start=1):
        if number <= len(lines):
            # A stored line keeps its line_number (its position): every other field is set.
            _assign(lines[number - 1], {k: v for k, v in item.items() if k != "line_number"}, fresh=False)
        else:
            line = ServiceLine()
            claim.service_lines.append(line)
            _assign(line, item, fresh=True)  # line_number included
    del claim.service_lines[len(values.lines) :]
    return claim


def _assign(row: Any, values: Mapping[str, Any], *, fresh: bool) -> None:
    """Set ``values`` on ``row``; on a row never stored (``fresh``) a None is left unset.

    The column is NULL either way (none of these attributes has a Python default that an
    unset attribute would take instead), and setting an instrumented attribute to None costs
    as much as setting a value: a charge file of thousands of claims would pay it for every
    absent field.
    """
    for name, value in values.items():
        if value is not None or not fresh:
            setattr(row, name, value)


def _record_scrub(session: Session, claim: Claim) -> list[dict[str, Any]]:
    findings = to_json_findings(scrub_claim(session, claim))
    claim.scrub_findings = findings
    claim.scrubbed_at = utcnow()
    return findings


def _has_error_findings(findings: list[dict[str, Any]]) -> bool:
    return any(f["severity"] == "error" for f in findings)


def create_claim(session: Session, data: Mapping[str, Any]) -> ClaimResult:
    """Store a claim from loaded claim JSON: ``ready`` when asked and clean, else ``draft``."""
    pcn = data.get("patient_control_number") or new_patient_control_number()
    if session.scalar(select(Claim.id).where(Claim.patient_control_number == pcn)) is not None:
        raise Conflict(
            "a claim with this patient_control_number exists already (CLM01 must be unique)",
            errors=[{"field": "patient_control_number", "rule": "unique", "message": "already used"}],
        )
    claim = Claim(patient_control_number=pcn, state=ClaimState.DRAFT, state_changed_at=utcnow())
    apply_claim_data(session, claim, data)
    session.add(claim)
    findings = _record_scrub(session, claim)
    session.flush()
    audit(session, **claim_created_event(claim))
    if data.get("ready") and not _has_error_findings(findings):
        state.mark_ready(session, claim, reason=READY_AT_CREATION)
    session.flush()
    return ClaimResult(claim, findings)


#: The audit reason of a claim stored ready because its first scrub was clean.
READY_AT_CREATION = "clean scrub at creation"


def claim_created_event(claim: Claim) -> dict[str, Any]:
    """The ``claim.create`` audit event of a new claim (``audit``'s or ``audit_events_bulk``'s arguments)."""
    return {
        "action": AuditAction.CREATE,
        "event_type": "claim.create",
        "entity_type": "claim",
        "entity_id": claim.public_id,
        "patient_id": claim.patient_id,
        "details": {"lines": len(claim.service_lines), "total_charge_cents": claim.total_charge_cents},
    }


def update_claim(session: Session, claim: Claim, data: Mapping[str, Any]) -> ClaimResult:
    """Replace a draft, ready or rejected claim's data; a ready claim with new errors goes back to draft."""
    if claim.state not in state.EDITABLE_STATES:
        allowed = ", ".join(sorted(s.value for s in state.EDITABLE_STATES))
        raise Conflict(
            f"claim {claim.public_id} is {claim.state.value} and cannot be edited (editable: {allowed})",
            current_state=claim.state.value,
        )
    if data.get("version") is not None and data["version"] != claim.version:
        raise Conflict(
            "the claim changed since you read it; read it again and reapply your change",
            errors=[
                {
                    "field": "version",
                    "rule": "current_version",
                    "message": f"current version is {claim.version}",
                }
            ],
        )
    pcn = data.get("patient_control_number")
    if pcn and pcn != claim.patient_control_number:
        raise _field_error("patient_control_number", "immutable", "CLM01 cannot change once the claim exists")
    apply_claim_data(session, claim, data)
    findings = _record_scrub(session, claim)
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type="claim.update",
        entity_type="claim",
        entity_id=claim.public_id,
        patient_id=claim.patient_id,
        details={"lines": len(claim.service_lines), "total_charge_cents": claim.total_charge_cents},
    )
    errors = _has_error_findings(findings)
    if claim.state == ClaimState.READY and (errors or data.get("ready") is False):
        state.return_to_draft(session, claim, reason="edited; scrub errors" if errors else "edited")
    elif claim.state == ClaimState.DRAFT and data.get("ready") and not errors:
        state.mark_ready(session, claim, reason="clean scrub after edit")
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("the claim was changed by another request; read it again and retry") from None
    return ClaimResult(claim, findings)


def validate_claim(session: Session, data: Mapping[str, Any]) -> dict[str, Any]:
    """Scrub claim JSON without saving anything: ``{"valid", "errors", "warnings", "findings"}``."""
    claim = Claim(
        patient_control_number=data.get("patient_control_number") or new_patient_control_number(),
        state=ClaimState.DRAFT,
    )
    # Keep the transient claim out of the session: relationships set on it must not
    # cascade it into a flush (validate never writes).
    with session.no_autoflush:
        apply_claim_data(session, claim, data)
        findings = to_json_findings(scrub_claim(session, claim))
    if claim in session:
        session.expunge(claim)
    return summary(findings)


def make_ready(
    session: Session, claim: Claim, *, reason: str | None = None, note: str | None = None
) -> ClaimResult:
    """Scrub and move draft → ready; scrub errors refuse the move (422 listing the findings).

    ``reason``: the code's own words for the audit event; ``note``: a user's, kept as an
    encrypted claim note that the event names (``claims.notes``).
    """
    state.check_transition(claim, "ready")
    findings = _record_scrub(session, claim)
    if _has_error_findings(findings):
        session.flush()
        raise Unprocessable(
            "the claim has scrub errors and cannot be ready",
            errors=[
                {"field": f["path"], "rule": f["rule_id"], "message": f["message"], "source": f["source"]}
                for f in findings
                if f["severity"] == "error"
            ],
        )
    state.mark_ready(session, claim, reason=reason, details=notes.reason_details(session, claim, note))
    session.flush()
    return ClaimResult(claim, findings)


def transition(session: Session, claim: Claim, name: str, *, reason: str | None = None) -> Claim:
    """Run the API-exposed transition ``name`` (``ready`` scrubs first, see :func:`make_ready`).

    ``reason`` is the user's words (the API body, a workspace form): PHI for all we know, so
    it is kept as an encrypted claim note and the audit event names the note.
    """
    if name == "ready":
        return make_ready(session, claim, note=reason).claim
    function = API_TRANSITIONS[name]
    function(session, claim, details=notes.reason_details(session, claim, reason))
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("the claim was changed by another request; read it again and retry") from None
    return claim


#: Transitions a user may request over the API. The others (batched, submitted, accepted,
#: rejected, acknowledged, paid...) follow from batches, 999s, 277CAs and 835s only.
API_TRANSITIONS = {
    "ready": state.mark_ready,
    "return-to-draft": state.return_to_draft,
    "void": state.void,
    "correct": state.correct_rejection,
    "reopen": state.reopen_for_correction,
    "close": state.close,
}


# -- reading ------------------------------------------------------------------------------------


def get_claim(session: Session, public_id: str) -> Claim:
    claim = session.scalar(select(Claim).where(Claim.public_id == public_id).options(*claim_load_options()))
    if claim is None:
        raise NotFound("no claim has this id")
    return claim


def list_claims(
    session: Session, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> Page[Claim]:
    """Claims matching ``filters`` (state, payer, patient, service and created ranges), by id."""
    query: Select[Any] = select(Claim).options(*claim_load_options())
    if filters.get("state"):
        query = query.where(Claim.state.in_([ClaimState(s) for s in filters["state"]]))
    if filters.get("patient"):
        query = query.where(
            Claim.patient_id
            == select(Patient.id).where(Patient.public_id == filters["patient"]).scalar_subquery()
        )
    if filters.get("payer"):
        payer_id = select(Payer.id).where(Payer.public_id == filters["payer"]).scalar_subquery()
        query = query.where(Claim.coverage_id.in_(select(Coverage.id).where(Coverage.payer_id == payer_id)))
    dos_from, dos_to = filters.get("service_date_from"), filters.get("service_date_to")
    if dos_from or dos_to:
        line_match = ServiceLine.claim_id == Claim.id
        if dos_from:
            line_match = line_match & (ServiceLine.service_date_from >= dos_from)
        if dos_to:
            line_match = line_match & (ServiceLine.service_date_from <= dos_to)
        query = query.where(exists().where(line_match))
    created_from: datetime | None = filters.get("created_from")
    created_to: datetime | None = filters.get("created_to")
    if created_from:
        query = query.where(Claim.created_at >= _aware(created_from))
    if created_to:
        query = query.where(Claim.created_at < _aware(created_to))
    return paginate(session, query, Claim.id, limit=limit, cursor=cursor, filters=filters)


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def claim_to_json(claim: Claim) -> dict[str, Any]:
    """The stored claim in the claim JSON shape (plus state, ids and findings)."""

    def ref(provider: Provider | None) -> str | None:
        return provider.public_id if provider is not None else None

    payer = claim.coverage.payer
    return {
        "id": claim.public_id,
        "state": claim.state.value,
        "state_changed_at": claim.state_changed_at,
        "allowed_transitions": [s.value for s in state.allowed_next(claim.state)],
        "version": claim.version,
        "patient": claim.patient.public_id,
        "coverage": claim.coverage.public_id,
        "payer": payer,
        "claim_kind": claim.claim_kind.value,
        "patient_control_number": claim.patient_control_number,
        "frequency_code": claim.frequency_code.value,
        "original_claim": claim.original_claim.public_id if claim.original_claim is not None else None,
        "payer_claim_control_number": claim.payer_claim_control_number,
        "place_of_service": claim.place_of_service,
        "facility_type_code": claim.facility_type_code,
        "rendering_provider": ref(claim.rendering_provider),
        "referring_provider": ref(claim.referring_provider),
        "supervising_provider": ref(claim.supervising_provider),
        "facility_provider": ref(claim.facility_provider),
        "prior_authorization": claim.prior_authorization,
        "referral_number": claim.referral_number,
        "related_causes": list(claim.related_causes or []),
        "accident_state": claim.accident_state,
        "onset_date": claim.onset_date,
        "accident_date": claim.accident_date,
        "total_charge": claim.total_charge_cents,
        "diagnoses": [dx.code for dx in claim.diagnoses],
        "lines": [
            {
                "line_number": line.line_number,
                "procedure": line.procedure_code,
                "modifiers": line.modifiers,
                "description": line.description,
                "charge": line.charge_cents,
                "units": line.units,
                "unit_basis": line.unit_basis.value,
                "service_date": line.service_date_from,
                "service_date_end": line.service_date_to,
                "diagnosis_pointers": line.pointer_positions,
                "place_of_service": line.place_of_service,
                "line_control_number": line.line_control_number,
                "rendering_provider": ref(line.rendering_provider),
                "ndc": line.ndc,
                "drug_quantity": line.drug_quantity,
                "drug_unit": line.drug_unit,
                "revenue_code": line.revenue_code,
            }
            for line in claim.service_lines
        ],
        "findings": list(claim.scrub_findings or []),
        "scrubbed_at": claim.scrubbed_at,
        "submitted_at": claim.submitted_at,
        "created_at": claim.created_at,
        "updated_at": claim.updated_at,
    }


def create_claim_from_json(session: Session, raw: Any) -> ClaimResult:
    """Validate and store claim JSON in one call (the CLI and the demo use this)."""
    return create_claim(session, load_claim_json(raw))


def validate_claim_json(session: Session, raw: Any) -> dict[str, Any]:
    """Validate claim JSON (shape, references, scrub) without saving anything."""
    return validate_claim(session, load_claim_json(raw))
