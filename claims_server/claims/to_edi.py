"""From database rows to ``edi.claims`` dataclasses: the claim, its parties, the batch header.

``build_edi_claim(session, claim)`` is the one conversion both the scrubber (validate,
ready) and the batcher (837 out) use, so what was scrubbed is exactly what is sent.
Money stays integer cents, units and drug quantities become ``Decimal`` from their
decimal strings, dates stay dates.

Data the 837 cannot be written without (a dependent patient's address for 2010CA N3/N4,
the subscriber's birth date and sex for DMG when the subscriber is the patient) is
checked here, because the dataclasses cannot even be built without some of it:
:class:`ClaimDataError` carries one :class:`~coding.scrubber.ScrubFinding` per missing
field, so callers hold the claim back with findings exactly as they do for scrub errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from claims_server.errors import Unprocessable
from claims_server.models import (
    Claim,
    ClaimFrequency,
    ClaimKind,
    ClearinghouseRoute,
    Coverage,
    Patient,
    Practice,
    Provider,
    ProviderEntityType,
)
from coding.scrubber import ScrubFinding
from edi import claims as edi
from edi.findings import Severity

__all__ = [
    "ClaimDataError",
    "Parties",
    "batch_for",
    "build_billing_provider",
    "build_edi_claim",
    "build_payer",
    "build_receiver",
    "build_submitter",
    "build_subscriber",
    "claim_load_options",
]


class ClaimDataError(Unprocessable):
    """The claim lacks data the 837 requires; ``findings`` name each missing field.

    Messages name fields and TR3 loops only (the missing values are PHI fields).
    """

    def __init__(self, findings: list[ScrubFinding]) -> None:
        super().__init__(
            "the claim cannot be written as an 837: " + "; ".join(f"{f.path}: {f.message}" for f in findings),
            errors=[{"field": f.path, "rule": f.rule_id, "message": f.message} for f in findings],
        )
        self.findings = findings


def claim_load_options() -> list[LoaderOption]:
    """Eager-load everything ``build_edi_claim`` reads (one query per relation, not per claim).

    The batcher passes these to its ``select(Claim)`` so that converting thousands of
    claims does not issue thousands of lazy loads.
    """
    return [
        selectinload(Claim.diagnoses),
        selectinload(Claim.service_lines),
        selectinload(Claim.patient),
        selectinload(Claim.practice),
        selectinload(Claim.coverage).selectinload(Coverage.payer),
        selectinload(Claim.original_claim),
        selectinload(Claim.rendering_provider),
        selectinload(Claim.referring_provider),
        selectinload(Claim.supervising_provider),
        selectinload(Claim.facility_provider),
    ]


# -- batch header pieces ------------------------------------------------------------------------


def _address(
    line1: str | None, line2: str | None, city: str | None, state: str | None, zip_code: str | None
) -> edi.Address | None:
    if not (line1 and city and state and zip_code):
        return None
    return edi.Address(line1=line1, city=city, state=state, zip_code=zip_code, line2=line2 or None)


def build_billing_provider(practice: Practice) -> edi.BillingProvider:
    """2000A/2010AA from the practice: an organization with its NPI, EIN and ZIP+4 address.

    2010AB (pay-to) is sent only when the practice has a different pay-to address (TR3:
    "required when the pay-to address differs from the billing provider's").
    """
    address = edi.Address(
        line1=practice.address_line1,
        line2=practice.address_line2 or None,
        city=practice.city,
        state=practice.state,
        zip_code=practice.zip_code,
    )
    pay_to_address = _address(
        practice.pay_to_address_line1,
        practice.pay_to_address_line2,
        practice.pay_to_city,
        practice.pay_to_state,
        practice.pay_to_zip_code,
    )
    pay_to = edi.PayToAddress(pay_to_address) if pay_to_address and pay_to_address != address else None
    contact = None
    if practice.phone or practice.contact_email:
        contact = edi.Contact(
            name=practice.contact_name or None,
            phone=practice.phone or None,
            email=practice.contact_email or None,
        )
    return edi.BillingProvider(
        npi=practice.npi,
        address=address,
        tax_id=practice.tax_id,
        organization_name=practice.name,
        taxonomy=practice.taxonomy_code or None,
        contact=contact,
        pay_to=pay_to,
    )


def build_submitter(practice: Practice) -> edi.Submitter:
    """1000A: the practice submits under the ETIN its clearinghouse assigned.

    TR3 1000A PER requires at least one number; a practice with neither phone nor e-mail
    is refused here rather than producing an 837 the clearinghouse bounces.
    """
    if not (practice.phone or practice.contact_email):
        raise Unprocessable(
            "the practice needs a phone or contact e-mail for the 837 submitter contact (1000A PER)",
            errors=[
                {
                    "field": "practice.phone",
                    "rule": "submitter_contact",
                    "message": "phone or e-mail required",
                }
            ],
        )
    return edi.Submitter(
        name=practice.name,
        identifier=practice.submitter_id,
        contact=edi.Contact(
            name=practice.contact_name or practice.name,
            phone=practice.phone or None,
            email=practice.contact_email or None,
        ),
    )


def build_receiver(route: ClearinghouseRoute) -> edi.Receiver:
    """1000B: the clearinghouse at the end of the route (NM109 = the route's GS03 code)."""
    return edi.Receiver(name=route.name[:60], identifier=route.application_receiver_code)


def batch_for(
    practice: Practice,
    route: ClearinghouseRoute,
    claims: Sequence[edi.Claim],
    *,
    kind: ClaimKind = ClaimKind.PROFESSIONAL,
    created: datetime | None = None,
    reference: str | None = None,
) -> edi.Batch837:
    """A :class:`edi.claims.Batch837` with the route's ISA/GS identities and the practice as submitter."""
    return edi.Batch837(
        submitter=build_submitter(practice),
        receiver=build_receiver(route),
        claims=list(claims),
        kind=edi.ClaimKind(kind.value),
        sender_qualifier=route.sender_id_qualifier,
        sender_id=route.sender_id,
        receiver_qualifier=route.receiver_id_qualifier,
        receiver_id=route.receiver_id,
        application_sender_code=route.application_sender_code,
        application_receiver_code=route.application_receiver_code,
        reference=reference,
        created=created,
    )


# -- the claim --------------------------------------------------------------------------------------


def _provider(provider: Provider | None, *, with_address: bool = False) -> edi.Provider | None:
    if provider is None:
        return None
    organization = provider.entity_type == ProviderEntityType.ORGANIZATION
    return edi.Provider(
        npi=provider.npi,
        last_name=None if organization else provider.last_name,
        first_name=None if organization else (provider.first_name or None),
        middle_name=None if organization else (provider.middle_name or None),
        suffix=None if organization else (provider.name_suffix or None),
        organization_name=provider.last_name if organization else None,
        taxonomy=provider.taxonomy_code or None,
        address=(
            _address(
                provider.address_line1,
                provider.address_line2,
                provider.city,
                provider.state,
                provider.zip_code,
            )
            if with_address
            else None
        ),
    )


def _missing(path: str, message: str, hint: str) -> ScrubFinding:
    return ScrubFinding("REQUIRED_DATA", Severity.ERROR, message, path, hint)


def build_subscriber(coverage: Coverage, patient: Patient, problems: list[ScrubFinding]) -> edi.Subscriber:
    """2000B/2010BA (also a prior payer's 2330A). For the patient-as-subscriber, the patient's demographics.

    Missing data is appended to ``problems`` (the caller raises :class:`ClaimDataError`).
    """
    payer = coverage.payer
    common = {
        "member_id": coverage.member_id,
        "group_number": coverage.group_number or None,
        "group_name": coverage.group_name or None,
        "responsibility": coverage.payer_responsibility.value,
        "claim_filing_indicator": payer.claim_filing_indicator.value,
        "insurance_type_code": coverage.insurance_type_code or None,
    }
    if coverage.is_self:
        address = _address(
            patient.address_line1, patient.address_line2, patient.city, patient.state, patient.zip_code
        )
        if address is None:
            # TR3 2010BA N3/N4: required when the subscriber is the patient.
            problems.append(
                _missing(
                    "patient.address",
                    "The patient (the subscriber) needs a street address, city, state and ZIP (2010BA N3/N4).",
                    "Complete the patient's address.",
                )
            )
        return edi.Subscriber(
            last_name=patient.last_name,
            first_name=patient.first_name or None,
            middle_name=patient.middle_name or None,
            suffix=patient.name_suffix or None,
            birth_date=patient.birth_date,
            sex=patient.sex,
            address=address,
            **common,
        )
    if not coverage.subscriber_last_name:
        problems.append(
            _missing(
                "coverage.subscriber_last_name",
                "The coverage names no subscriber although the patient is not the subscriber (2010BA NM1).",
                "Enter the subscriber's name on the coverage.",
            )
        )
    return edi.Subscriber(
        last_name=coverage.subscriber_last_name or "",
        first_name=coverage.subscriber_first_name or None,
        middle_name=coverage.subscriber_middle_name or None,
        birth_date=coverage.subscriber_birth_date,
        sex=coverage.subscriber_sex or None,
        address=_address(
            coverage.subscriber_address_line1,
            coverage.subscriber_address_line2,
            coverage.subscriber_city,
            coverage.subscriber_state,
            coverage.subscriber_zip_code,
        ),
        **common,
    )


def _dependent(coverage: Coverage, patient: Patient, problems: list[ScrubFinding]) -> edi.Patient | None:
    """2000C/2010CA, only when the patient is not the subscriber (TR3: SBR02 ≠ 18)."""
    if coverage.is_self:
        return None
    address = _address(
        patient.address_line1, patient.address_line2, patient.city, patient.state, patient.zip_code
    )
    if address is None:
        # TR3 2010CA N3/N4 are required.
        problems.append(
            _missing(
                "patient.address",
                "The patient needs a street address, city, state and ZIP (2010CA N3/N4).",
                "Complete the patient's address.",
            )
        )
        return None
    return edi.Patient(
        last_name=patient.last_name,
        first_name=patient.first_name or None,
        middle_name=patient.middle_name or None,
        suffix=patient.name_suffix or None,
        relationship_code=coverage.relationship_code.value,
        birth_date=patient.birth_date,
        sex=patient.sex,
        address=address,
    )


def build_payer(coverage: Coverage) -> edi.Payer:
    """2010BB (also a prior payer's 2330B): the coverage's payer, its id and address."""
    payer = coverage.payer
    return edi.Payer(
        name=payer.name,
        payer_id=payer.payer_id,
        address=_address(payer.address_line1, payer.address_line2, payer.city, payer.state, payer.zip_code),
    )


def _lines(claim: Claim) -> list[edi.ServiceLine]:
    claim_rendering = claim.rendering_provider_id
    out = []
    for line in claim.service_lines:
        # SV105 only when it differs from CLM05-1; 2420A only when it differs from 2310B.
        pos = line.place_of_service if line.place_of_service != claim.place_of_service else None
        rendering = (
            _provider(line.rendering_provider)
            if line.rendering_provider_id is not None and line.rendering_provider_id != claim_rendering
            else None
        )
        end = line.service_date_to if line.service_date_to != line.service_date_from else None
        out.append(
            edi.ServiceLine(
                procedure=line.procedure_code,
                charge_cents=line.charge_cents,
                units=Decimal(line.units),
                modifiers=tuple(line.modifiers),
                unit_basis=line.unit_basis.value,
                place_of_service=pos or None,
                diagnosis_pointers=tuple(line.pointer_positions),
                service_date=line.service_date_from,
                service_date_end=end,
                line_control_number=line.line_control_number,
                ndc=line.ndc or None,
                drug_quantity=Decimal(line.drug_quantity) if line.drug_quantity else None,
                drug_unit=line.drug_unit or None,
                rendering=rendering,
                revenue_code=line.revenue_code or None,
                procedure_qualifier=line.procedure_qualifier,
                description=line.description or None,
            )
        )
    return out


#: What :func:`build_edi_claim` makes of a coverage and its patient: subscriber, patient loop,
#: payer and the missing data found (see ``parties``).
Parties = tuple[edi.Subscriber, edi.Patient | None, edi.Payer, tuple[ScrubFinding, ...]]


def build_edi_claim(
    session: Session,
    claim: Claim,
    *,
    billing_provider: edi.BillingProvider | None = None,
    parties: dict[tuple[int, int], Parties] | None = None,
) -> edi.Claim:
    """The 837 claim (2300 with its parties and lines) for a stored claim.

    ``session`` loads what is not loaded yet (use :func:`claim_load_options` for many
    claims). ``billing_provider`` is ``build_billing_provider(claim.practice)`` when the
    caller already built it (the batcher converts thousands of claims of one practice).
    ``parties``: a dict the caller keeps across the claims of one call, in which the
    subscriber, patient and payer loops built for a coverage and its patient are kept for
    that patient's other claims (they are frozen dataclasses made from those two rows only;
    the rows must not change while the dict is in use).
    Raises :class:`ClaimDataError` when required data is missing.
    """
    coverage = claim.coverage
    patient = claim.patient
    key = (id(coverage), id(patient))
    known = parties.get(key) if parties is not None else None
    if known is None:
        problems: list[ScrubFinding] = []
        subscriber = build_subscriber(coverage, patient, problems)
        dependent = _dependent(coverage, patient, problems)
        known = (subscriber, dependent, build_payer(coverage), tuple(problems))
        if parties is not None:
            parties[key] = known
    subscriber, dependent, payer, found = known
    if found:
        raise ClaimDataError(list(found))
    institutional = claim.claim_kind == ClaimKind.INSTITUTIONAL
    frequency = ClaimFrequency(claim.frequency_code)
    original_number = None
    if frequency is not ClaimFrequency.ORIGINAL:
        # REF*F8 carries the payer's control number of the claim being replaced or voided.
        original = claim.original_claim
        original_number = (
            original.payer_claim_control_number if original is not None else None
        ) or claim.payer_claim_control_number
    rendering = _provider(claim.rendering_provider)
    related = tuple(claim.related_causes or ())
    return edi.Claim(
        patient_control_number=claim.patient_control_number,
        billing_provider=billing_provider or build_billing_provider(claim.practice),
        subscriber=subscriber,
        payer=payer,
        lines=_lines(claim),
        diagnoses=[edi.Diagnosis(dx.code) for dx in claim.diagnoses],
        kind=edi.ClaimKind(claim.claim_kind.value),
        patient=dependent,
        total_charge_cents=claim.total_charge_cents,
        place_of_service=(claim.facility_type_code if institutional else claim.place_of_service) or "",
        frequency_code=frequency.value,
        original_claim_number=original_number,
        prior_authorization=claim.prior_authorization or None,
        referral_number=claim.referral_number or None,
        provider_signature=claim.provider_signature_on_file,
        assignment_participation=claim.assignment_code,
        benefits_assignment=claim.benefits_assigned,
        release_of_information=claim.release_of_information,
        related_causes=related,
        related_causes_state=claim.accident_state or None,
        onset_date=claim.onset_date,
        accident_date=claim.accident_date,
        referring=_provider(claim.referring_provider),
        rendering=None if institutional else rendering,
        supervising=_provider(claim.supervising_provider),
        service_facility=_provider(claim.facility_provider, with_address=True),
        admission_type=claim.admission_type_code or None,
        admission_source=claim.admission_source_code or None,
        patient_status=claim.patient_status_code or None,
        statement_from=claim.statement_from,
        statement_to=claim.statement_to,
        # 837I 2310A attending is required; the claim's rendering provider is the attending.
        attending=rendering if institutional else None,
    )
