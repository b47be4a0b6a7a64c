"""One claim's remittance detail: what each payer's current adjudication says per service line,
every adjudication of the claim (its history), and the claims related to it.

The claim screen (``/ui/claims/<id>``) and ``GET /api/v1/claims/<id>/remittance-detail`` show
the same document. Amounts are decimal strings (``"12.34"``) as in the remittance detail; the
codes are explained by ``coding.adjustment_codes`` (CARC, RARC, group codes).

Which adjudication counts: the ledger reflects the *current* adjudications only (state
``current``); a reversed or superseded one stays in the history (shown greyed by the
screen), a reversal is listed as ``applied``, a held one as ``held``. A crossover payer's
adjudication of the primary claim (CLP01 = the primary's number) is on the primary claim and
names its own payer, so the per-line view groups by payer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claims_server.models import Claim, ClaimPayment, LinePayment, Payer, Remittance
from claims_server.models.claims import ClaimFrequency
from claims_server.models.remittance import AdjudicationState
from claims_server.remittance.services import _adjustments_json
from edi.x835 import CLAIM_STATUS, format_cents

#: Adjudications the ledger reflects: their lines make the per-line view.
CURRENT_STATES = frozenset({AdjudicationState.CURRENT})
#: Adjudications no longer in force (shown greyed in the history).
PAST_STATES = frozenset(
    {AdjudicationState.REVERSED, AdjudicationState.SUPERSEDED, AdjudicationState.REJECTED}
)

_ORDER_WORDS = {1: "primary", 2: "secondary", 3: "tertiary"}


def _money(cents: int | None) -> str | None:
    return format_cents(cents) if cents is not None else None


def _remarks(codes: list[str] | None) -> list[dict[str, Any]]:
    from coding.adjustment_codes import lookup

    return [
        {"code": code, "meaning": entry.meaning if (entry := lookup("rarc", code)) else None}
        for code in codes or []
    ]


def _payment_row(p: ClaimPayment, payer_names: dict[int, str]) -> dict[str, Any]:
    remittance: Remittance = p.remittance
    state = p.adjudication_state
    return {
        "payer": payer_names.get(p.payer_id or 0) or remittance.payer_name or remittance.payer_identifier,
        "remittance": remittance.public_id,
        "trace_number": remittance.trace_number,
        "payment_method": remittance.payment_method,
        "payment_date": remittance.payment_date.isoformat() if remittance.payment_date else None,
        "received_at": p.created_at.isoformat() if p.created_at else None,
        "status_code": p.status_code,
        "status": CLAIM_STATUS.get(p.status_code),
        "adjudication_kind": p.adjudication_kind.value if p.adjudication_kind else None,
        "adjudication_state": state.value if state else None,
        "in_force": state in CURRENT_STATES,
        "past": state in PAST_STATES,
        "hold_reason": p.hold_reason.value if p.hold_reason else None,
        "charge": format_cents(p.charge_cents),
        "paid": format_cents(p.paid_cents),
        "patient_responsibility": _money(p.patient_responsibility_cents),
        "payer_claim_control_number": p.payer_claim_control_number,
        "adjustments": _adjustments_json(p.adjustments),
    }


def related_claims(session: Session, claim: Claim) -> list[dict[str, Any]]:
    """Claims linked to ``claim``: the original it replaces or voids (frequency 7/8, REF*F8), the
    primary it follows (a secondary/tertiary claim), and the other way round."""
    rows: list[dict[str, Any]] = []

    def word(c: Claim) -> str:
        return _ORDER_WORDS.get(c.coverage_order, f"payer {c.coverage_order}")

    original = claim.original_claim
    if original is not None:
        if claim.frequency_code == ClaimFrequency.REPLACEMENT:
            relation = "replaces (corrected claim of)"
        elif claim.frequency_code == ClaimFrequency.VOID:
            relation = "voids"
        else:
            relation = f"{word(claim)} claim after the {word(original)} claim"
        rows.append(_related(original, relation))
    for other in session.scalars(select(Claim).where(Claim.original_claim_id == claim.id).order_by(Claim.id)):
        if other.frequency_code == ClaimFrequency.REPLACEMENT:
            relation = "replaced by (corrected claim)"
        elif other.frequency_code == ClaimFrequency.VOID:
            relation = "voided by"
        else:
            relation = f"{word(other)} claim billed after this one"
        rows.append(_related(other, relation))
    return rows


def _related(c: Claim, relation: str) -> dict[str, Any]:
    return {
        "relation": relation,
        "claim": c.public_id,
        "claim_number": c.patient_control_number,
        "state": c.state.value,
        "frequency_code": c.frequency_code.value,
        "coverage_order": c.coverage_order,
    }


def claim_remittance_detail(session: Session, claim: Claim) -> dict[str, Any]:
    """The claim's per-line remittance detail, adjudication history and related claims."""
    payments = list(
        session.scalars(
            select(ClaimPayment)
            .where(ClaimPayment.claim_id == claim.id)
            .order_by(ClaimPayment.created_at, ClaimPayment.id)
            .options(
                selectinload(ClaimPayment.remittance),
                selectinload(ClaimPayment.adjustments),
                selectinload(ClaimPayment.line_payments).selectinload(LinePayment.adjustments),
            )
        )
    )
    payer_ids = {p.payer_id for p in payments if p.payer_id}
    payer_names = (
        dict(session.execute(select(Payer.id, Payer.name).where(Payer.id.in_(payer_ids))).all())
        if payer_ids
        else {}
    )
    lines = []
    for line in claim.service_lines:
        answers = []
        for p in payments:
            if p.adjudication_state not in CURRENT_STATES:
                continue
            row = _payment_row(p, payer_names)
            for lp in p.line_payments:
                if lp.service_line_id != line.id:
                    continue
                answers.append(
                    {
                        "payer": row["payer"],
                        "remittance": row["remittance"],
                        "trace_number": row["trace_number"],
                        "adjudication_kind": row["adjudication_kind"],
                        "procedure": lp.procedure_code,
                        "charge": format_cents(lp.charge_cents),
                        "allowed": _money(lp.allowed_cents),
                        "paid": format_cents(lp.paid_cents),
                        "adjustments": _adjustments_json(lp.adjustments),
                        "remarks": _remarks(lp.remark_codes),
                    }
                )
        lines.append(
            {
                "line_number": line.line_number,
                "procedure": line.procedure_code,
                "service_date": line.service_date_from.isoformat() if line.service_date_from else None,
                "charge": format_cents(line.charge_cents),
                "adjudications": answers,
            }
        )
    history = [_payment_row(p, payer_names) for p in payments]
    return {
        "claim": claim.public_id,
        "claim_number": claim.patient_control_number,
        "patient": claim.patient.public_id,
        "lines": lines,
        "current": [h for h in history if h["in_force"]],
        "adjudications": history,
        "related": related_claims(session, claim),
    }
