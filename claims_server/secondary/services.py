"""Next-payer claims: when a payer has adjudicated a claim and the patient has another
coverage after it, build the claim for that coverage with the COB loops (2320/2330/2430)
from what the prior payer(s) decided.

Rules, and where they come from:

- Only the prior payer's **current** adjudication counts (``ClaimPayment.adjudication_state``
  ``current``, CLP02 1, 2 or 3; docs/adjudication-history.md): COB needs the prior payer's
  paid amount and CAS, and a reversed, superseded, held or rejected adjudication never feeds
  loop 2320/2430 (AMT*D). A prior payer that reversed its adjudication and has not sent the
  corrected one leaves nothing to bill the next payer with: creating the next claim is
  refused, and an existing next-payer claim is held by the batcher with a finding
  (``COB_PRIOR_NOT_CURRENT``) instead of leaving without the prior payer's loop.
- Crossover: CLP02 19/20/21 ("processed ... and forwarded to additional payer") or an
  NM1*TT crossover carrier on the 835 means the payer already sent the claim on; billing
  the next payer ourselves would be a duplicate (playbook MA18/MA07), so it is refused.
- The next claim links to the prior payer's claim through ``Claim.original_claim`` with
  frequency 1 and a higher ``coverage_order``; frequency stays 1 (an original claim to
  this payer), so no REF*F8 is written for it. A tertiary claim walks that chain back
  and carries both prior payers (one 2320 loop each).
- Balancing (TR3 2320 and 2430 notes, our ``X12.COB_*_BALANCE`` rules): for each prior
  payer, claim charge - AMT*D paid = Σ claim CAS + Σ line CAS, and per line SVD02 paid +
  line CAS = line charge. The 835's own balancing guarantees it when the charges match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import edi.claims as edi
from claims_server.api_common.audit import audit
from claims_server.claims.services import new_patient_control_number
from claims_server.claims.to_edi import ClaimDataError, build_edi_claim, build_payer, build_subscriber
from claims_server.errors import Conflict
from claims_server.models import (
    Adjustment,
    AuditAction,
    Claim,
    ClaimDiagnosis,
    ClaimFrequency,
    ClaimPayment,
    ClaimState,
    Coverage,
    LinePayment,
    Remittance,
    ServiceLine,
)
from claims_server.models.common import utcnow
from claims_server.models.remittance import AdjudicationState
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import open_items_of_claims, resolve_by_system
from coding.scrubber import ScrubFinding
from edi.findings import Severity

#: CLP02 values meaning the payer adjudicated the claim as primary, secondary or tertiary.
ADJUDICATED_STATUSES = frozenset({"1", "2", "3"})
#: CLP02 values meaning the payer forwarded the claim to the next payer itself.
CROSSOVER_STATUSES = frozenset({"19", "20", "21"})
REVERSAL_STATUS = "22"


def current_claim_payment(session: Session, claim: Claim) -> ClaimPayment | None:
    """The payer's current adjudication of ``claim`` (the newest, should history hold two)."""
    return session.scalar(
        select(ClaimPayment)
        .where(
            ClaimPayment.claim_id == claim.id, ClaimPayment.adjudication_state == AdjudicationState.CURRENT
        )
        .order_by(ClaimPayment.id.desc())
        .limit(1)
    )


def _was_reversed(session: Session, claim: Claim) -> bool:
    """Whether the payer took back an adjudication of ``claim`` (one of its CLPs is reversed)."""
    return (
        session.scalar(
            select(ClaimPayment.id)
            .where(
                ClaimPayment.claim_id == claim.id,
                ClaimPayment.adjudication_state.in_(
                    (AdjudicationState.REVERSED, AdjudicationState.SUPERSEDED)
                ),
            )
            .limit(1)
        )
        is not None
    )


def latest_claim_payment(session: Session, claim: Claim) -> ClaimPayment | None:
    """The claim's last 835 claim payment that is not itself a reversal (CLP02 = 22).

    For the payer's claim number and determination date (corrections, appeals); a next-payer
    claim reads :func:`current_claim_payment` instead.
    """
    return session.scalar(
        select(ClaimPayment)
        .join(Remittance, ClaimPayment.remittance_id == Remittance.id)
        .where(ClaimPayment.claim_id == claim.id, ClaimPayment.status_code != REVERSAL_STATUS)
        .order_by(ClaimPayment.id.desc())
        .limit(1)
    )


def is_crossover(payment: ClaimPayment) -> bool:
    """Whether the payer forwarded the claim (CLP02 19/20/21 or an NM1*TT crossover carrier)."""
    return (
        payment.status_code in CROSSOVER_STATUSES
        or bool(payment.crossover_payer_name)
        or bool(payment.crossover_payer_id)
    )


def _first_service_date(claim: Claim) -> date:
    return min(line.service_date_from for line in claim.service_lines)


def next_coverage(session: Session, claim: Claim) -> Coverage | None:
    """The patient's coverage of the next order, effective on the first date of service."""
    day = _first_service_date(claim)
    candidates = session.scalars(
        select(Coverage)
        .where(Coverage.patient_id == claim.patient_id, Coverage.coverage_order == claim.coverage_order + 1)
        .order_by(Coverage.effective_start.desc())
    ).all()
    return next((c for c in candidates if c.is_effective_on(day)), None)


def next_payer_claim(session: Session, claim: Claim) -> Claim | None:
    """The claim already made for the next payer after ``claim`` (not voided), if any."""
    return session.scalar(
        select(Claim).where(
            Claim.original_claim_id == claim.id,
            Claim.frequency_code == ClaimFrequency.ORIGINAL,
            Claim.coverage_order > claim.coverage_order,
            Claim.state != ClaimState.VOIDED,
        )
    )


@dataclass(frozen=True)
class NextPayerCandidate:
    """A claim whose payer adjudicated it, with what is left and the coverage to bill next."""

    claim: Claim
    claim_payment: ClaimPayment
    next_coverage: Coverage


def _candidate(session: Session, claim: Claim) -> NextPayerCandidate | str:
    """The candidate, or why ``claim`` cannot go to a next payer (a sentence for a 409)."""
    payment = current_claim_payment(session, claim)
    if payment is None:
        if _was_reversed(session, claim):
            return (
                "the payer reversed its adjudication of this claim and has not sent a corrected one; "
                "a next payer is billed from the current adjudication only"
            )
        return "the payer has not adjudicated this claim (no 835 posted for it)"
    if is_crossover(payment):
        return "the payer forwarded the claim to the next payer itself (crossover); do not bill it again"
    if payment.status_code not in ADJUDICATED_STATUSES:
        return f"the payer did not adjudicate the claim for payment (CLP02 {payment.status_code})"
    if not payment.patient_responsibility_cents:
        return "nothing is left for a next payer (CLP05 patient responsibility is zero)"
    coverage = next_coverage(session, claim)
    if coverage is None:
        return "the patient has no coverage after this one effective on the date of service"
    if next_payer_claim(session, claim) is not None:
        return "the next payer's claim exists already"
    return NextPayerCandidate(claim, payment, coverage)


def next_payer_refusal(session: Session, claim: Claim) -> str | None:
    """Why ``claim`` cannot go to a next payer now (a sentence), or None when it can."""
    found = _candidate(session, claim)
    return found if isinstance(found, str) else None


def claims_needing_next_payer(session: Session) -> list[NextPayerCandidate]:
    """Every adjudicated claim with money left, a next coverage and no next-payer claim yet."""
    claims = session.scalars(
        select(Claim)
        .where(
            Claim.state.in_(
                (ClaimState.PAID, ClaimState.PARTIALLY_PAID, ClaimState.DENIED, ClaimState.CLOSED)
            ),
            select(ClaimPayment.id)
            .where(
                ClaimPayment.claim_id == Claim.id,
                ClaimPayment.adjudication_state == AdjudicationState.CURRENT,
            )
            .exists(),
            select(Coverage.id)
            .where(
                Coverage.patient_id == Claim.patient_id, Coverage.coverage_order == Claim.coverage_order + 1
            )
            .exists(),
        )
        .order_by(Claim.id)
    ).all()
    out = []
    for claim in claims:
        found = _candidate(session, claim)
        if isinstance(found, NextPayerCandidate):
            out.append(found)
    return out


def create_next_payer_claim(session: Session, claim: Claim) -> Claim:
    """Create (draft) the claim for the next coverage: same services, a new CLM01, frequency 1.

    Refused with :class:`Conflict` (changing nothing) when the prior payer has not
    adjudicated it, crossed it over, left nothing, or the next claim already exists.
    """
    found = _candidate(session, claim)
    if isinstance(found, str):
        raise Conflict(
            f"claim {claim.public_id} cannot be billed to a next payer: {found}",
            errors=[{"field": "claim", "rule": "next_payer", "message": found}],
        )
    coverage = found.next_coverage
    nxt = Claim(
        patient_control_number=new_patient_control_number(),
        practice_id=claim.practice_id,
        patient_id=claim.patient_id,
        encounter_id=claim.encounter_id,
        coverage=coverage,
        coverage_id=coverage.id,
        coverage_order=coverage.coverage_order,
        claim_kind=claim.claim_kind,
        frequency_code=ClaimFrequency.ORIGINAL,
        original_claim=claim,
        original_claim_id=claim.id,
        state=ClaimState.DRAFT,
        state_changed_at=utcnow(),
        **copy_claim_fields(claim),
    )
    copy_lines_and_diagnoses(claim, nxt, nxt.patient_control_number)
    session.add(nxt)
    session.flush()
    audit(
        session,
        action=AuditAction.CREATE,
        event_type="claim.create_next_payer",
        entity_type="claim",
        entity_id=nxt.public_id,
        patient_id=nxt.patient_id,
        details={
            "prior_claim": claim.public_id,
            "coverage_order": coverage.coverage_order,
            "prior_paid_cents": found.claim_payment.paid_cents,
        },
    )
    close_needs_secondary(session, claim, nxt)
    return nxt


def close_needs_secondary(session: Session, claim: Claim, nxt: Claim) -> int:
    """Resolve ``claim``'s open ``needs_secondary`` items: the next payer's claim ``nxt`` exists.

    "Follow-up closes itself" (docs/adjudication-history.md): the item asked for exactly
    this, so it closes now with a system note rather than at the next sweep.
    """
    items = open_items_of_claims(session, {claim.id}, queues=[WorkQueue.NEEDS_SECONDARY])
    note = f"the next payer's claim {nxt.public_id} was created (coverage order {nxt.coverage_order})"
    return sum(resolve_by_system(session, item, note) for item in items)


#: Claim columns a copy (next-payer, replacement or void claim) takes over unchanged.
COPIED_CLAIM_FIELDS = (
    "place_of_service",
    "facility_type_code",
    "total_charge_cents",
    "provider_signature_on_file",
    "assignment_code",
    "benefits_assigned",
    "release_of_information",
    "related_causes",
    "accident_state",
    "onset_date",
    "accident_date",
    "statement_from",
    "statement_to",
    "admission_type_code",
    "admission_source_code",
    "patient_status_code",
    "prior_authorization",
    "referral_number",
    "rendering_provider_id",
    "referring_provider_id",
    "supervising_provider_id",
    "facility_provider_id",
)

_LINE_FIELDS = (
    "line_number",
    "procedure_qualifier",
    "procedure_code",
    "modifier1",
    "modifier2",
    "modifier3",
    "modifier4",
    "description",
    "revenue_code",
    "charge_cents",
    "unit_basis",
    "units",
    "place_of_service",
    "diagnosis_pointers",
    "emergency_indicator",
    "service_date_from",
    "service_date_to",
    "ndc",
    "drug_quantity",
    "drug_unit",
    "rendering_provider_id",
)


def copy_claim_fields(claim: Claim) -> dict[str, object]:
    """The claim-level data of ``claim`` as keyword arguments for a new ``Claim``."""
    return {name: getattr(claim, name) for name in COPIED_CLAIM_FIELDS}


def copy_lines_and_diagnoses(source: Claim, target: Claim, pcn: str) -> None:
    """Copy diagnoses and service lines; each line gets a REF*6R under the new CLM01."""
    for dx in source.diagnoses:
        target.diagnoses.append(ClaimDiagnosis(position=dx.position, code=dx.code, qualifier=dx.qualifier))
    for line in source.service_lines:
        copy = ServiceLine(**{name: getattr(line, name) for name in _LINE_FIELDS})
        copy.line_control_number = f"{pcn}-{line.line_number}"
        target.service_lines.append(copy)


def _cas(adjustments: Iterable[Adjustment]) -> tuple[edi.CasAdjustment, ...]:
    return tuple(
        edi.CasAdjustment(str(a.group_code.value), a.reason_code, a.amount_cents)
        for a in sorted(adjustments, key=lambda a: a.id)
    )


def _relationship(coverage: Coverage) -> str:
    return coverage.relationship_code.value


def prior_payers(
    session: Session, claim: Claim, payments: Mapping[int, ClaimPayment] | None = None
) -> list[tuple[Claim, ClaimPayment]]:
    """The prior payers' claims and adjudications for a next-payer claim, primary first.

    ``payments`` is :func:`preload_prior_payments`'s answer when the caller loaded many
    claims' prior adjudications at once; without it each prior claim costs a query.
    """
    chain: list[tuple[Claim, ClaimPayment]] = []
    prior = claim.original_claim
    while prior is not None and prior.coverage_order < claim.coverage_order:
        payment = payments.get(prior.id) if payments is not None else current_claim_payment(session, prior)
        if payment is None:
            raise ClaimDataError([_prior_not_current(prior)])
        chain.append((prior, payment))
        prior = prior.original_claim if prior.frequency_code == ClaimFrequency.ORIGINAL else None
    return list(reversed(chain))


def _prior_not_current(prior: Claim) -> ScrubFinding:
    """The finding of a next-payer claim whose prior payer has no current adjudication."""
    return ScrubFinding(
        "COB_PRIOR_NOT_CURRENT",
        Severity.ERROR,
        f"the prior payer (coverage order {prior.coverage_order}) has no current adjudication of claim "
        f"{prior.public_id}: it was reversed, or never posted; loop 2320 needs it",
        "2320",
        "wait for the prior payer's corrected 835 (the claim goes out once it is posted), or void this claim",
    )


def other_payer(session: Session, claim: Claim, prior: Claim, payment: ClaimPayment) -> edi.OtherPayer:
    """One 2320/2330 loop: the prior payer, its insured, paid amount, CAS and line adjudications."""
    problems: list[ScrubFinding] = []
    subscriber = build_subscriber(prior.coverage, claim.patient, problems)
    if problems:
        raise ClaimDataError(problems)
    remittance = payment.remittance
    adjudicated = remittance.payment_date or remittance.production_date or payment.created_at.date()
    prior_lines = {line.id: line.line_number for line in prior.service_lines}
    lines: list[edi.LineAdjudication] = []
    for line_payment in payment.line_payments:
        number = prior_lines.get(line_payment.service_line_id) if line_payment.service_line_id else None
        if number is None:
            continue
        modifiers = tuple(
            m
            for m in (
                line_payment.modifier1,
                line_payment.modifier2,
                line_payment.modifier3,
                line_payment.modifier4,
            )
            if m
        )
        lines.append(
            edi.LineAdjudication(
                line_number=number,
                paid_cents=line_payment.paid_cents,
                procedure=line_payment.procedure_code,
                adjudication_date=adjudicated,
                units=edi_units(line_payment.units),
                modifiers=modifiers,
                adjustments=_cas(line_payment.adjustments),
                procedure_qualifier=line_payment.procedure_qualifier or "HC",
                revenue_code=line_payment.revenue_code,
            )
        )
    return edi.OtherPayer(
        payer=build_payer(prior.coverage),
        subscriber=subscriber,
        relationship_code=_relationship(prior.coverage),
        paid_cents=payment.paid_cents,
        adjustments=_cas(payment.adjustments),
        remaining_patient_liability_cents=payment.patient_responsibility_cents,
        payer_claim_control_number=payment.payer_claim_control_number,
        adjudication_date=adjudicated,
        line_adjudications=tuple(sorted(lines, key=lambda la: la.line_number)),
    )


def preload_prior_payments(session: Session, claims: Iterable[Claim]) -> dict[int, ClaimPayment]:
    """For many next-payer claims at once: their prior claims and adjudications, by prior claim id.

    Loads, with a few queries whatever the number of claims, everything
    :func:`other_payer` reads: the prior claims (walking ``original_claim`` back to the
    primary) with their coverage, payer and service lines, and each prior claim's
    current adjudication (the one :func:`current_claim_payment` picks) with its
    remittance, CAS and line payments. Primary claims need nothing and are skipped.
    """
    pending = [claim for claim in claims if claim.coverage_order > 1 and claim.original_claim_id]
    priors: dict[int, Claim] = {}
    while pending:
        ids = {claim.original_claim_id for claim in pending} - priors.keys()
        loaded = (
            session.scalars(
                select(Claim)
                .where(Claim.id.in_(ids))
                .options(
                    selectinload(Claim.service_lines),
                    selectinload(Claim.coverage).selectinload(Coverage.payer),
                )
            ).all()
            if ids
            else []
        )
        priors.update((prior.id, prior) for prior in loaded)
        # A tertiary claim's prior is a secondary claim: walk on to its primary.
        pending = [prior for prior in loaded if prior.coverage_order > 1 and prior.original_claim_id]
    if not priors:
        return {}
    rows = session.scalars(
        select(ClaimPayment)
        .join(Remittance, ClaimPayment.remittance_id == Remittance.id)
        .where(
            ClaimPayment.claim_id.in_(priors), ClaimPayment.adjudication_state == AdjudicationState.CURRENT
        )
        .order_by(ClaimPayment.id)
        .options(
            selectinload(ClaimPayment.remittance),
            selectinload(ClaimPayment.adjustments),
            selectinload(ClaimPayment.line_payments).selectinload(LinePayment.adjustments),
        )
    ).all()
    # Ascending ids: the last payment seen for a claim is its latest.
    return {payment.claim_id: payment for payment in rows}


def edi_units(units: str | None) -> Decimal:
    """SVC05 (a decimal string, absent means 1) as the Decimal SVD05 wants."""
    return Decimal(units) if units else Decimal(1)


def build_cob_edi_claim(
    session: Session,
    claim: Claim,
    *,
    billing_provider: edi.BillingProvider | None = None,
    payments: Mapping[int, ClaimPayment] | None = None,
) -> edi.Claim:
    """The 837 claim with one 2320 loop per prior payer's adjudication (none for a primary claim).

    The batcher converts every claim with this, so a secondary or tertiary claim leaves
    with its COB loops; for a primary claim (``coverage_order`` 1, or a replacement whose
    ``original_claim`` has the same order) it is exactly ``build_edi_claim`` and costs no
    query. ``billing_provider`` is passed on to ``build_edi_claim``; ``payments``
    (:func:`preload_prior_payments`) saves the per-claim queries for the prior payers.
    """
    built = build_edi_claim(session, claim, billing_provider=billing_provider)
    built.other_payers = [
        other_payer(session, claim, prior, payment)
        for prior, payment in prior_payers(session, claim, payments)
    ]
    return built
