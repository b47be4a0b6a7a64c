"""835 → ExplanationOfBenefit and ClaimResponse (one per CLP), PaymentReconciliation (one per BPR/TRN).

The ExplanationOfBenefit follows the CARIN Blue Button professional profile
(C4BB-ExplanationOfBenefit-Professional-NonClinician): adjudication categories from
http://terminology.hl7.org/CodeSystem/adjudication (submitted, eligible, deductible,
copay, benefit) and http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication
(coinsurance, memberliability); each CAS triple is an ``adjustmentreason`` adjudication
(http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator) whose reason
is the CARC (https://x12.org/codes/claim-adjustment-reason-codes); RARCs (LQ*HE) are
processNotes. Amounts are the 835's, to the cent: see docs/fhir-mapping.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from claims_server.fhir import search
from claims_server.fhir.claims import (
    ACK_PREFIX,
    CLAIM_IDENTIFIER_PARAM,
    CREATED_PARAM,
    _ack_events,
    ack_groups,
    ack_to_fhir,
    date_filter,
    identifier_filter,
    procedure_concept,
    read_ack,
)
from claims_server.fhir.common import (
    ADJUDICATION_SYSTEM,
    C4BB_ADJUDICATION_SYSTEM,
    C4BB_DISCRIMINATOR_SYSTEM,
    C4BB_PROFESSIONAL_PROFILE,
    CARC_SYSTEM,
    CLAIM_TYPE_SYSTEM,
    CPT_SYSTEM,
    FHIR_ID,
    PAYER_CLAIM_SYSTEM,
    PCN_SYSTEM,
    TRACE_SYSTEM,
    coding,
    concept,
    day,
    identifier,
    instant,
    money,
    parse_reference_param,
    prune,
    reference,
)
from claims_server.fhir.outcome import FhirError, Issue
from claims_server.fhir.patients import ID_PARAM, PATIENT_PARAM, payer_ref, practice_ref
from claims_server.models import Adjustment, Claim, ClaimPayment, EdiFile, LinePayment, Remittance

C4BB_IDENTIFIER_TYPE_SYSTEM = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
PAYMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
RECONCILIATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/payment-type"
ERA_PREFIX = "era-"
#: CAS group PR reason -> the CARIN category it is (CARC 1 deductible, 2 coinsurance, 3 copay).
_PR_CATEGORY = {
    "1": (ADJUDICATION_SYSTEM, "deductible"),
    "2": (C4BB_ADJUDICATION_SYSTEM, "coinsurance"),
    "3": (ADJUDICATION_SYSTEM, "copay"),
}
#: CLP02 claim status -> words for ``disposition``.
_CLP02 = {
    "1": "Processed as primary",
    "2": "Processed as secondary",
    "3": "Processed as tertiary",
    "4": "Denied",
    "19": "Processed as primary, forwarded to additional payer(s)",
    "20": "Processed as secondary, forwarded to additional payer(s)",
    "21": "Processed as tertiary, forwarded to additional payer(s)",
    "22": "Reversal of previous payment",
    "23": "Not our claim, forwarded to additional payer(s)",
}


def eob_id(payment: ClaimPayment) -> str:
    """``<remittance id>-<CLP position>``: a CLP has no id of its own; both parts are public ids."""
    return f"{payment.remittance.public_id}-{payment.position}"


def _category(system: str, code: str, cents: int | None) -> dict[str, Any]:
    return {"category": concept(system, code), "amount": money(cents)}


def _adjustment_entries(adjustments: Iterable[Adjustment]) -> list[dict[str, Any]]:
    from coding.adjustment_codes import lookup

    out = []
    for adj in adjustments:
        carc = lookup("carc", adj.reason_code)
        out.append(
            {
                "category": concept(C4BB_DISCRIMINATOR_SYSTEM, "adjustmentreason"),
                "reason": {
                    "coding": [coding(CARC_SYSTEM, adj.reason_code, carc.meaning[:200] if carc else None)],
                    "text": f"{adj.group_code.value}-{adj.reason_code}",
                },
                "amount": money(adj.amount_cents),
            }
        )
    return out


def _sum(adjustments: Iterable[Adjustment], group: str, reason: str | None = None) -> int:
    return sum(
        a.amount_cents
        for a in adjustments
        if a.group_code.value == group and (reason is None or a.reason_code == reason)
    )


def line_amounts(line: LinePayment) -> dict[str, int]:
    """The CARIN categories of one SVC: submitted SVC02, benefit SVC03, eligible AMT*B6 (or
    charge less every non-PR adjustment), deductible/coinsurance/copay PR-1/2/3, memberliability Σ PR."""
    adjustments = list(line.adjustments)
    non_patient = sum(a.amount_cents for a in adjustments if a.group_code.value != "PR")
    return {
        "submitted": line.charge_cents,
        "eligible": line.allowed_cents if line.allowed_cents is not None else line.charge_cents - non_patient,
        "deductible": _sum(adjustments, "PR", "1"),
        "coinsurance": _sum(adjustments, "PR", "2"),
        "copay": _sum(adjustments, "PR", "3"),
        "memberliability": _sum(adjustments, "PR"),
        "benefit": line.paid_cents,
    }


def claim_amounts(payment: ClaimPayment) -> dict[str, int]:
    """Claim totals: CLP03 submitted, CLP04 benefit, CLP05 memberliability (else Σ PR), the rest summed
    over the lines and the claim-level CAS."""
    lines = [line_amounts(line) for line in payment.line_payments]
    claim_adj = list(payment.adjustments)
    non_patient = sum(a.amount_cents for a in claim_adj if a.group_code.value != "PR")
    patient = _sum(claim_adj, "PR")
    eligible = (
        sum(x["eligible"] for x in lines) - non_patient if lines else payment.charge_cents - non_patient
    )
    return {
        "submitted": payment.charge_cents,
        "eligible": eligible,
        "deductible": sum(x["deductible"] for x in lines) + _sum(claim_adj, "PR", "1"),
        "coinsurance": sum(x["coinsurance"] for x in lines) + _sum(claim_adj, "PR", "2"),
        "copay": sum(x["copay"] for x in lines) + _sum(claim_adj, "PR", "3"),
        "memberliability": payment.patient_responsibility_cents
        if payment.patient_responsibility_cents is not None
        else sum(x["memberliability"] for x in lines) + patient,
        "benefit": payment.paid_cents,
    }


_SYSTEM_OF = {
    "submitted": ADJUDICATION_SYSTEM,
    "eligible": ADJUDICATION_SYSTEM,
    "deductible": ADJUDICATION_SYSTEM,
    "copay": ADJUDICATION_SYSTEM,
    "benefit": ADJUDICATION_SYSTEM,
    "coinsurance": C4BB_ADJUDICATION_SYSTEM,
    "memberliability": C4BB_ADJUDICATION_SYSTEM,
}


def _categories(amounts: dict[str, int]) -> list[dict[str, Any]]:
    return [_category(_SYSTEM_OF[name], name, cents) for name, cents in amounts.items()]


def _notes(payment: ClaimPayment) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    """RARCs as processNotes (numbered once per code) and each line's note numbers."""
    from coding.adjustment_codes import lookup

    numbers: dict[str, int] = {}
    notes: list[dict[str, Any]] = []
    by_line: dict[int, list[int]] = {}
    for line in payment.line_payments:
        for code in line.remark_codes or []:
            if code not in numbers:
                numbers[code] = len(numbers) + 1
                rarc = lookup("rarc", code)
                notes.append(
                    {
                        "number": numbers[code],
                        "type": "display",
                        "text": f"{code}: {rarc.meaning}" if rarc else code,
                        # R4 has no coded processNote; the RARC system travels in the language-free text
                        # and, for machines, in the item's noteNumber pointing here.
                    }
                )
            by_line.setdefault(line.position, []).append(numbers[code])
    return notes, by_line


def _items(payment: ClaimPayment, claim: Claim, *, response: bool) -> list[dict[str, Any]]:
    _, note_numbers = _notes(payment)
    items = []
    for line in payment.line_payments:
        adjudication = _categories(line_amounts(line)) + _adjustment_entries(line.adjustments)
        sequence = line.service_line.line_number if line.service_line is not None else line.position
        if response:
            items.append(
                {
                    "itemSequence": sequence,
                    "noteNumber": note_numbers.get(line.position),
                    "adjudication": adjudication,
                }
            )
            continue
        items.append(
            {
                "sequence": sequence,
                "productOrService": procedure_concept(line.procedure_code),
                "modifier": [
                    concept(CPT_SYSTEM, m)
                    for m in (line.modifier1, line.modifier2, line.modifier3, line.modifier4)
                    if m
                ],
                "servicedDate": day(
                    line.service_date
                    or (line.service_line.service_date_from if line.service_line is not None else None)
                    or payment.service_date_from
                ),
                "quantity": {"value": line.units} if line.units else None,
                "net": money(line.charge_cents),
                "noteNumber": note_numbers.get(line.position),
                "adjudication": adjudication,
            }
        )
    return items


def _payment(payment: ClaimPayment) -> dict[str, Any]:
    remittance = payment.remittance
    return {
        "type": concept(PAYMENT_TYPE_SYSTEM, "complete" if payment.status_code != "22" else "partial"),
        "date": day(remittance.payment_date),
        "amount": money(payment.paid_cents),
        "identifier": identifier(TRACE_SYSTEM, remittance.trace_number),
    }


def _common(payment: ClaimPayment, claim: Claim) -> dict[str, Any]:
    remittance = payment.remittance
    payer = remittance.payer or claim.coverage.payer
    return {
        "identifier": [
            identifier(PCN_SYSTEM, payment.patient_control_number),
            {
                "type": concept(C4BB_IDENTIFIER_TYPE_SYSTEM, "uc"),
                "system": PAYER_CLAIM_SYSTEM,
                "value": payment.payer_claim_control_number,
            }
            if payment.payer_claim_control_number
            else None,
        ],
        "status": "active",
        "type": concept(CLAIM_TYPE_SYSTEM, claim.claim_kind.value),
        "use": "claim",
        "patient": reference("Patient", claim.patient.public_id),
        "created": instant(payment.created_at),
        "insurer": payer_ref(payer),
        "outcome": "complete",
        "disposition": _CLP02.get(payment.status_code, f"CLP02 {payment.status_code}"),
    }


def eob_to_fhir(payment: ClaimPayment) -> dict[str, Any]:
    claim = payment.claim
    assert claim is not None
    notes, _ = _notes(payment)
    dates = [d for d in (payment.service_date_from, payment.service_date_to) if d] or [
        line.service_date_from for line in claim.service_lines
    ]
    return prune(
        {
            "resourceType": "ExplanationOfBenefit",
            "id": eob_id(payment),
            "meta": {"profile": [C4BB_PROFESSIONAL_PROFILE], "lastUpdated": instant(payment.created_at)},
            **_common(payment, claim),
            "billablePeriod": {"start": day(min(dates)), "end": day(max(dates))} if dates else None,
            "provider": practice_ref(claim.practice),
            "claim": reference("Claim", claim.public_id),
            "claimResponse": reference("ClaimResponse", ERA_PREFIX + eob_id(payment)),
            "insurance": [{"focal": True, "coverage": reference("Coverage", claim.coverage.public_id)}],
            "item": _items(payment, claim, response=False),
            "adjudication": _adjustment_entries(payment.adjustments),
            "total": _categories(claim_amounts(payment)),
            "payment": _payment(payment),
            "processNote": notes,
        }
    )


def era_response_to_fhir(payment: ClaimPayment) -> dict[str, Any]:
    """The same CLP as a ClaimResponse (the payer's adjudication of our Claim)."""
    claim = payment.claim
    assert claim is not None
    notes, _ = _notes(payment)
    return prune(
        {
            "resourceType": "ClaimResponse",
            "id": ERA_PREFIX + eob_id(payment),
            **_common(payment, claim),
            "request": reference("Claim", claim.public_id),
            "item": _items(payment, claim, response=True),
            "adjudication": _adjustment_entries(payment.adjustments),
            "total": _categories(claim_amounts(payment)),
            "payment": _payment(payment),
            "processNote": notes,
        }
    )


def _payment_query() -> Select[Any]:
    return (
        select(ClaimPayment)
        .join(Claim, Claim.id == ClaimPayment.claim_id)
        .options(
            selectinload(ClaimPayment.adjustments),
            selectinload(ClaimPayment.remittance),
            selectinload(ClaimPayment.claim),
            selectinload(ClaimPayment.line_payments).selectinload(LinePayment.adjustments),
            selectinload(ClaimPayment.line_payments).selectinload(LinePayment.service_line),
        )
    )


def _payment_by_id(session: Session, resource_id: str, kind: str) -> ClaimPayment:
    remittance_id, _, position = resource_id.rpartition("-")
    if not position.isdigit() or not FHIR_ID.match(remittance_id or "-"):
        raise search.not_found(kind)
    payment = session.scalar(
        _payment_query()
        .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
        .where(Remittance.public_id == remittance_id, ClaimPayment.position == int(position))
    )
    if payment is None:
        raise search.not_found(kind)
    return payment


def read_eob(session: Session, resource_id: str) -> dict[str, Any]:
    return eob_to_fhir(_payment_by_id(session, resource_id, "ExplanationOfBenefit"))


def read_claim_response(session: Session, resource_id: str) -> dict[str, Any]:
    if resource_id.startswith(ACK_PREFIX):
        return read_ack(session, resource_id)
    if not resource_id.startswith(ERA_PREFIX):
        raise search.not_found("ClaimResponse")
    return era_response_to_fhir(
        _payment_by_id(session, resource_id.removeprefix(ERA_PREFIX), "ClaimResponse")
    )


def _claim_ref_filter(name: str) -> search.Handler:
    def handler(query: Any, raw: str) -> Any:
        public_id = parse_reference_param(name, raw, "Claim")
        return query.where(Claim.public_id == public_id)

    return handler


def _claim_handlers(created_column: Any, ref_name: str) -> dict[str, search.Handler]:
    from claims_server.fhir.patients import patient_filter

    return {
        "patient": patient_filter(Claim.patient_id),
        "created": date_filter(created_column, "created"),
        "identifier": identifier_filter(
            {PCN_SYSTEM: Claim.patient_control_number, PAYER_CLAIM_SYSTEM: Claim.payer_claim_control_number}
        ),
        ref_name: _claim_ref_filter(ref_name),
    }


def _id_handler(prefix: str) -> search.Handler:
    """``_id`` of an EOB / 835 ClaimResponse: ``[era-]<remittance id>-<position>``."""

    def handler(query: Any, raw: str) -> Any:
        remittance_id, _, position = raw.removeprefix(prefix).rpartition("-")
        if not position.isdigit():
            from sqlalchemy import false

            return query.where(false())
        return query.where(
            ClaimPayment.remittance_id
            == select(Remittance.id).where(Remittance.public_id == remittance_id).scalar_subquery(),
            ClaimPayment.position == int(position),
        )

    return handler


def search_eobs(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = {"_id": _id_handler(""), **_claim_handlers(ClaimPayment.created_at, "claim")}
    found = search.page(session, search.apply(_payment_query(), args, handlers), ClaimPayment.id, args)
    return [eob_to_fhir(p) for p in found.items], found.next_cursor


def search_claim_responses(
    session: Session, args: search.SearchArgs
) -> tuple[list[dict[str, Any]], str | None]:
    """835 answers first, then 277CA answers; the cursor says which list and where (``era.``/``ack.``)."""
    from claims_server.api_common.pagination import decode_cursor, encode_cursor
    from claims_server.models import ClaimStatusEvent

    phase, _, inner = (args.cursor or "era.").partition(".")
    if phase not in ("era", "ack"):
        raise FhirError(400, [Issue("the cursor is not one this server issued", "value", "_cursor")])
    filters = args.filters()
    out: list[dict[str, Any]] = []
    if phase == "era":
        era_args = search.SearchArgs(
            {
                k: [v.removeprefix(ERA_PREFIX) for v in vs] if k == "_id" else vs
                for k, vs in args.params.items()
            },
            args.count,
            inner or None,
        )
        handlers = {"_id": _id_handler(""), **_claim_handlers(ClaimPayment.created_at, "request")}
        found = search.page(
            session, search.apply(_payment_query(), era_args, handlers), ClaimPayment.id, era_args
        )
        out = [era_response_to_fhir(p) for p in found.items]
        if found.next_cursor:
            return out, "era." + found.next_cursor
        inner = ""
    remaining = args.count - len(out)
    if remaining <= 0:
        return out, "ack." + encode_cursor(0, {**filters, "phase": "ack"})
    after = decode_cursor(inner or None, {**filters, "phase": "ack"})
    handlers = _claim_handlers(ClaimStatusEvent.created_at, "request")

    def narrow(query: Any) -> Any:
        for name, values in args.params.items():
            for value in values:
                if name == "_id":
                    file_id, _, pcn = value.removeprefix(ACK_PREFIX).partition("-")
                    query = query.where(
                        Claim.patient_control_number == pcn,
                        ClaimStatusEvent.edi_file_id
                        == select(EdiFile.id).where(EdiFile.public_id == file_id).scalar_subquery(),
                    )
                else:
                    query = handlers[name](query, value)
        return query

    rows = session.execute(ack_groups(narrow, after, remaining + 1)).all()
    for _first_id, file_id, claim_id in rows[:remaining]:
        out.append(ack_to_fhir(_ack_events(session, file_id, claim_id)))
    next_cursor = None
    if len(rows) > remaining:
        next_cursor = "ack." + encode_cursor(rows[remaining - 1][0], {**filters, "phase": "ack"})
    return out, next_cursor


REQUEST_PARAM = search.SearchParam("request", "reference", "the Claim answered (Claim/<id>)")
EOB = search.ResourceKind(
    "ExplanationOfBenefit",
    read_eob,
    search_eobs,
    (
        ID_PARAM,
        PATIENT_PARAM,
        CREATED_PARAM,
        CLAIM_IDENTIFIER_PARAM,
        search.SearchParam("claim", "reference", "the Claim adjudicated (Claim/<id>)"),
    ),
    profiles=(C4BB_PROFESSIONAL_PROFILE,),
)
CLAIM_RESPONSE = search.ResourceKind(
    "ClaimResponse",
    read_claim_response,
    search_claim_responses,
    (ID_PARAM, PATIENT_PARAM, CREATED_PARAM, CLAIM_IDENTIFIER_PARAM, REQUEST_PARAM),
)


# -- PaymentReconciliation ------------------------------------------------------------------------


def reconciliation_to_fhir(session: Session, remittance: Remittance) -> dict[str, Any]:
    """One 835 payment: a detail per matched CLP (its paid amount) and per PLB (negated: a positive
    PLB04 reduces the payment), so the details sum to BPR02."""
    payments = session.scalars(
        select(ClaimPayment)
        .where(ClaimPayment.remittance_id == remittance.id)
        .order_by(ClaimPayment.position)
        .options(selectinload(ClaimPayment.claim))
    ).all()
    details: list[dict[str, Any]] = []
    for payment in payments:
        details.append(
            {
                "identifier": identifier(PCN_SYSTEM, payment.patient_control_number),
                "type": concept(RECONCILIATION_TYPE_SYSTEM, "payment"),
                "request": reference("Claim", payment.claim.public_id) if payment.claim is not None else None,
                "response": reference("ClaimResponse", ERA_PREFIX + eob_id(payment))
                if payment.claim is not None
                else None,
                "date": day(remittance.payment_date),
                "amount": money(payment.paid_cents),
            }
        )
    for adjustment in remittance.provider_adjustments:
        details.append(
            {
                "type": {
                    "coding": [coding(RECONCILIATION_TYPE_SYSTEM, "adjustment")],
                    "text": f"PLB {adjustment.reason_code}",
                },
                "date": day(adjustment.fiscal_period_date),
                "amount": money(-adjustment.amount_cents),
            }
        )
    return prune(
        {
            "resourceType": "PaymentReconciliation",
            "id": remittance.public_id,
            "meta": {"lastUpdated": instant(remittance.updated_at)},
            "identifier": [identifier(TRACE_SYSTEM, remittance.trace_number)],
            "status": "active",
            "created": instant(remittance.created_at),
            "paymentIssuer": payer_ref(remittance.payer)
            if remittance.payer is not None
            else {"display": remittance.payer_name},
            "outcome": "complete" if remittance.state.value == "posted" else "queued",
            "disposition": f"BPR04 {remittance.payment_method}",
            "paymentDate": day(remittance.payment_date or remittance.created_at.date()),
            "paymentAmount": money(
                remittance.payment_amount_cents
                if remittance.credit_debit_flag != "D"
                else -remittance.payment_amount_cents
            ),
            "paymentIdentifier": identifier(TRACE_SYSTEM, remittance.trace_number),
            "detail": details,
        }
    )


def read_reconciliation(session: Session, public_id: str) -> dict[str, Any]:
    remittance = session.scalar(select(Remittance).where(Remittance.public_id == public_id))
    if remittance is None:
        raise search.not_found("PaymentReconciliation")
    return reconciliation_to_fhir(session, remittance)


def search_reconciliations(
    session: Session, args: search.SearchArgs
) -> tuple[list[dict[str, Any]], str | None]:
    from claims_server.fhir.patients import id_filter

    handlers = {
        "_id": id_filter(Remittance.public_id),
        "created": date_filter(Remittance.created_at, "created"),
        "identifier": identifier_filter({TRACE_SYSTEM: Remittance.trace_number}),
    }
    found = search.page(session, search.apply(select(Remittance), args, handlers), Remittance.id, args)
    return [reconciliation_to_fhir(session, r) for r in found.items], found.next_cursor


PAYMENT_RECONCILIATION = search.ResourceKind(
    "PaymentReconciliation",
    read_reconciliation,
    search_reconciliations,
    (
        ID_PARAM,
        CREATED_PARAM,
        search.SearchParam("identifier", "token", f"the check or EFT trace number ({TRACE_SYSTEM})"),
    ),
)
