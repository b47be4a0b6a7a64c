"""From a patient's coverage to the 270 inquiry (:class:`edi.x270.EligibilityInquiry`).

The server maps its rows onto :class:`CoverageFacts` (plain values), so this module
needs no database: when the patient is the subscriber (relationship 18) the patient is
2100C with the member id; otherwise the subscriber is 2100C (member id, name) and the
patient a dependent in 2100D with birth date and relationship (TR3 1.4.2: a dependent
without a unique member id of their own is asked about at the dependent level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from edi.x270 import GENERAL_MEDICAL, EligibilityInquiry, InquiryParty, Member, ServiceInquiry

SELF = "18"


@dataclass(frozen=True, slots=True)
class PersonFacts:
    last_name: str
    first_name: str
    birth_date: date | None = None
    sex: str = ""
    middle_name: str = ""


@dataclass(frozen=True, slots=True)
class CoverageFacts:
    """What a 270 needs from one coverage (all PHI except the payer and group)."""

    payer_name: str
    payer_id: str
    member_id: str
    patient: PersonFacts
    relationship: str = SELF  # SBR02/INS02 code of the patient to the subscriber
    subscriber: PersonFacts | None = None  # required when relationship != 18
    group_number: str = ""


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """The provider asking (2100B): the billing NPI is what payers look up."""

    name: str
    npi: str
    taxonomy: str = ""
    entity_type: str = "2"
    first_name: str = ""


class RequestError(ValueError):
    """The coverage lacks something every payer requires (the message names the field)."""


def build_inquiry(
    coverage: CoverageFacts,
    provider: ProviderFacts,
    *,
    trace_number: str,
    trace_originator: str,
    service_date: date,
    service_types: Sequence[str] = (GENERAL_MEDICAL,),
    procedures: Sequence[str] = (),
) -> EligibilityInquiry:
    """The 270 inquiry for one coverage, date of service and list of questions.

    Service type 30 (general medical) is always asked first: CAQH CORE requires payers to
    answer it with the plan's status, dates and patient financials, which the summary needs.
    """
    if not coverage.member_id.strip():
        raise RequestError("coverage.member_id is required (2100C NM109)")
    if not coverage.payer_id.strip():
        raise RequestError("payer.payer_id is required (2100A NM109)")
    if len(trace_originator) != 10:
        raise RequestError("trace_originator must be 10 characters (TRN03: '1' + EIN)")
    types = [GENERAL_MEDICAL, *(s for s in service_types if s != GENERAL_MEDICAL)]
    questions = [ServiceInquiry((code,)) for code in dict.fromkeys(types)]
    questions += [ServiceInquiry((), "HC", code) for code in dict.fromkeys(procedures)]
    patient = coverage.patient
    if coverage.relationship == SELF:
        subscriber = Member(
            patient.last_name,
            patient.first_name,
            member_id=coverage.member_id,
            middle_name=patient.middle_name,
            birth_date=patient.birth_date,
            sex=patient.sex,
            group_number=coverage.group_number,
        )
        dependent = None
    else:
        if coverage.subscriber is None:
            raise RequestError("coverage.subscriber is required when the patient is not the subscriber")
        holder = coverage.subscriber
        subscriber = Member(
            holder.last_name,
            holder.first_name,
            member_id=coverage.member_id,
            middle_name=holder.middle_name,
            group_number=coverage.group_number,
        )
        dependent = Member(
            patient.last_name,
            patient.first_name,
            middle_name=patient.middle_name,
            birth_date=patient.birth_date,
            sex=patient.sex,
            relationship=coverage.relationship,
        )
    return EligibilityInquiry(
        trace_number=trace_number,
        trace_originator=trace_originator,
        payer=InquiryParty("PR", coverage.payer_name, "PI", coverage.payer_id),
        provider=InquiryParty(
            "1P",
            provider.name,
            "XX",
            provider.npi,
            provider.entity_type,
            provider.first_name,
            provider.taxonomy,
        ),
        subscriber=subscriber,
        dependent=dependent,
        service_date=service_date,
        inquiries=tuple(questions),
        reference=trace_number,
    )
