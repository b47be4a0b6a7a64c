"""837P (005010X222A1) and 837I (005010X223A2): generation from claims, and parsing back.

Generation groups a flat claim list into the HL tree (2000A billing provider → 2000B
subscriber + payer → 2000C patient when the patient is not the subscriber), numbers HL
and LX itself, splits more than 5,000 claims into further ST/SE in the same GS (TR3
batching guidance) and takes every control number from the caller.

Parsing reads an 837 back into the same dataclasses: enough for a lossless round trip
of what the generator writes, and tolerant of the wider TR3 (unknown segments are
skipped). Unreadable values raise :class:`X837ParseError` with X12 coordinates.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from edi.claims import (
    Address,
    Batch837,
    BillingProvider,
    CasAdjustment,
    Claim,
    ClaimKind,
    Contact,
    Diagnosis,
    LineAdjudication,
    OccurrenceCode,
    OtherPayer,
    Patient,
    Payer,
    PayToAddress,
    Procedure,
    Provider,
    Receiver,
    ServiceLine,
    Submitter,
    Subscriber,
    ValueCode,
)
from edi.envelope import GroupEnvelope, InterchangeEnvelope, TransactionSet, iter_transaction_sets
from edi.numbers import amount_cents, parse_count, read_decimal
from edi.reader import Delimiters, Segment, Source, X12SyntaxError
from edi.writer import X12WriteError, X12Writer, format_amount, format_decimal

__all__ = [
    "MAX_CLAIMS_PER_TRANSACTION",
    "Parsed837",
    "X837ParseError",
    "parse_837",
    "write_837",
    "write_837_file",
    "write_837_to",
]

MAX_CLAIMS_PER_TRANSACTION = 5000  # TR3: at most 5,000 CLM per ST/SE
MAX_LINES_837P = 50
MAX_DX_837P = 12
MAX_CAS_TRIPLETS = 6
# Dental claims (5010 X224, 4010 X097): refused with UNSUPPORTED_837D, never read as 837P.
_DENTAL_GUIDES = ("X224", "X097")

TransactionControls = Iterable[str] | Callable[[int], str]


def _d8(value: date) -> str:
    return value.isoformat().replace("-", "")


# -- generation -----------------------------------------------------------------------------


def write_837(
    batch: Batch837,
    *,
    interchange_control: int,
    group_control: int,
    transaction_controls: TransactionControls,
    delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass
    usage: str = "P",
    ack_requested: bool = False,
    when: datetime | None = None,
    line_breaks: bool = False,
) -> str:
    """Build a whole 837 interchange as text. Raises X12WriteError; nothing is returned then.

    ``transaction_controls`` gives ST02 values: an iterable consumed one per transaction
    set, or a callable taking the 0-based transaction index.
    """
    writer = X12Writer(delimiters, line_breaks=line_breaks)
    _write(
        writer, batch, interchange_control, group_control, transaction_controls, usage, ack_requested, when
    )
    return writer.getvalue()


def write_837_to(
    fh: TextIO,
    batch: Batch837,
    *,
    interchange_control: int,
    group_control: int,
    transaction_controls: TransactionControls,
    delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass
    usage: str = "P",
    ack_requested: bool = False,
    when: datetime | None = None,
    line_breaks: bool = False,
) -> None:
    """Stream an 837 to a text handle, one block of complete segments at a time.

    Memory stays flat. If a claim fails (X12WriteError), the handle holds a prefix of the
    interchange: use :func:`write_837_file`, which only ever leaves a complete file.
    """
    writer = X12Writer(delimiters, line_breaks=line_breaks, stream=fh)
    _write(
        writer, batch, interchange_control, group_control, transaction_controls, usage, ack_requested, when
    )


def write_837_file(path: str | os.PathLike[str], batch: Batch837, **options: Any) -> None:
    """Write an 837 to ``path`` atomically: a temporary file renamed only on success."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".837-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write_837_to(fh, batch, **options)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def _control_source(controls: TransactionControls) -> Callable[[int], str]:
    if callable(controls):
        return controls
    iterator = iter(controls)

    def next_control(_: int) -> str:
        try:
            return next(iterator)
        except StopIteration:
            raise X12WriteError(
                "ST ST02: the caller supplied fewer transaction control numbers than transaction sets",
                code="CONTROL_NUMBERS_EXHAUSTED",
                segment="ST",
                element="ST02",
            ) from None

    return next_control


def _ordered_claims(claims: list[Claim]) -> list[Claim]:
    """Group claims so equal billing providers, then equal subscriber/payer/patient, are
    adjacent; first-seen order is kept at every level."""
    by_provider: dict[BillingProvider, dict[tuple[Any, ...], list[Claim]]] = {}
    for claim in claims:
        key = (claim.subscriber, claim.payer, claim.patient is None, claim.patient)
        by_provider.setdefault(claim.billing_provider, {}).setdefault(key, []).append(claim)
    ordered: list[Claim] = []
    for groups in by_provider.values():
        for group in groups.values():
            ordered.extend(group)
    return ordered


def _write(
    writer: X12Writer,
    batch: Batch837,
    interchange_control: int,
    group_control: int,
    transaction_controls: TransactionControls,
    usage: str,
    ack_requested: bool,
    when: datetime | None,
) -> None:
    when = when or batch.created or datetime.now()
    kind = batch.kind
    for claim in batch.claims:
        if claim.kind is not kind:
            raise X12WriteError(
                "CLM: every claim in a batch must be of the batch's kind (837P and 837I never share a GS)",
                code="KIND_MISMATCH",
                segment="CLM",
            )
    sender_id = batch.sender_id or batch.submitter.identifier
    receiver_id = batch.receiver_id or batch.receiver.identifier
    writer.begin_interchange(
        sender_qualifier=batch.sender_qualifier,
        sender_id=sender_id,
        receiver_qualifier=batch.receiver_qualifier,
        receiver_id=receiver_id,
        control_number=interchange_control,
        usage=usage,
        ack_requested=ack_requested,
        when=when,
    )
    implementation = kind.implementation
    writer.begin_group(
        functional_id="HC",
        sender_code=batch.application_sender_code or sender_id,
        receiver_code=batch.application_receiver_code or receiver_id,
        control_number=group_control,
        version=implementation,
        when=when,
    )
    control_for = _control_source(transaction_controls)
    ordered = _ordered_claims(batch.claims)
    chunks = [
        ordered[i : i + MAX_CLAIMS_PER_TRANSACTION]
        for i in range(0, len(ordered), MAX_CLAIMS_PER_TRANSACTION)
    ] or [[]]
    emitter = _Emitter(writer, kind)
    for index, chunk in enumerate(chunks):
        control = control_for(index)
        writer.begin_transaction("837", control, implementation)
        created = batch.created or when
        writer.segment(
            "BHT",
            "0019",
            "00",
            batch.reference or control,
            _d8(created.date()),
            created.strftime("%H%M"),
            batch.transaction_type,
        )
        emitter.header(batch.submitter, batch.receiver)
        emitter.tree(chunk)
        writer.end_transaction()
    writer.end_group()
    writer.end_interchange()


class _Emitter:
    """Writes the loops of one transaction set; one instance per interchange."""

    __slots__ = ("institutional", "seg", "writer")

    def __init__(self, writer: X12Writer, kind: ClaimKind) -> None:
        self.writer = writer
        self.seg = writer.segment
        self.institutional = kind is ClaimKind.INSTITUTIONAL

    # Parties ---------------------------------------------------------------------------

    def header(self, submitter: Submitter, receiver: Receiver) -> None:
        seg = self.seg
        if submitter.first_name:
            seg(
                "NM1",
                "41",
                "1",
                submitter.name,
                submitter.first_name,
                None,
                None,
                None,
                "46",
                submitter.identifier,
            )
        else:
            seg("NM1", "41", "2", submitter.name, None, None, None, None, "46", submitter.identifier)
        self.contact(submitter.contact)
        seg("NM1", "40", "2", receiver.name, None, None, None, None, "46", receiver.identifier)

    def contact(self, contact: Contact) -> None:
        numbers: list[str | None] = []
        for qualifier, value in (("TE", contact.phone), ("EX", contact.phone_extension)):
            if value:
                numbers += [qualifier, value]
        for qualifier, value in (("EM", contact.email), ("FX", contact.fax)):
            if value and len(numbers) < 6:
                numbers += [qualifier, value]
        self.seg("PER", "IC", contact.name, *numbers)

    def address(self, address: Address) -> None:
        self.seg("N3", address.line1, address.line2)
        self.seg("N4", address.city, address.state, address.zip_code, address.country)

    def person_or_org(
        self,
        entity: str,
        party: Provider | BillingProvider,
        qualifier: str | None,
        identifier: str | None,
    ) -> None:
        if party.organization_name is not None:
            self.seg(
                "NM1", entity, "2", party.organization_name, None, None, None, None, qualifier, identifier
            )
        else:
            self.seg(
                "NM1",
                entity,
                "1",
                party.last_name,
                party.first_name,
                party.middle_name,
                None,
                party.suffix,
                qualifier,
                identifier,
            )

    def provider(self, entity: str, provider: Provider, prv_code: str | None) -> None:
        self.person_or_org(entity, provider, "XX" if provider.npi else None, provider.npi)
        if prv_code and provider.taxonomy:
            self.seg("PRV", prv_code, "PXC", provider.taxonomy)
        if entity == "77" and provider.address is not None:
            self.address(provider.address)

    def billing_provider(self, bp: BillingProvider) -> None:
        seg = self.seg
        if bp.taxonomy:
            seg("PRV", "BI", "PXC", bp.taxonomy)
        self.person_or_org("85", bp, "XX", bp.npi)
        self.address(bp.address)
        seg("REF", bp.tax_id_qualifier, bp.tax_id)
        if bp.contact is not None:
            self.contact(bp.contact)
        if bp.pay_to is not None:
            seg("NM1", "87", "2")
            self.address(bp.pay_to.address)

    def insured(self, entity: str, sub: Subscriber, *, demographics: bool) -> None:
        self.seg(
            "NM1",
            entity,
            "1",
            sub.last_name,
            sub.first_name,
            sub.middle_name,
            None,
            sub.suffix,
            "MI",
            sub.member_id,
        )
        if sub.address is not None:
            self.address(sub.address)
        if demographics and sub.birth_date is not None:
            self.seg("DMG", "D8", _d8(sub.birth_date), sub.sex)

    def payer(self, payer: Payer) -> None:
        self.seg("NM1", "PR", "2", payer.name, None, None, None, None, payer.id_qualifier, payer.payer_id)
        if payer.address is not None:
            self.address(payer.address)

    # Tree ------------------------------------------------------------------------------

    def tree(self, claims: list[Claim]) -> None:
        writer = self.writer
        i = 0
        n = len(claims)
        while i < n:
            bp = claims[i].billing_provider
            j = i
            while j < n and claims[j].billing_provider == bp:
                j += 1
            bp_hl = writer.hl(None, "20", True)
            self.billing_provider(bp)
            k = i
            while k < j:
                first = claims[k]
                key = (first.subscriber, first.payer, first.patient)
                m = k
                while m < j and (claims[m].subscriber, claims[m].payer, claims[m].patient) == key:
                    m += 1
                self.subscriber_level(bp_hl, claims[k:m])
                k = m
            i = j

    def subscriber_level(self, parent: int, claims: list[Claim]) -> None:
        first = claims[0]
        sub = first.subscriber
        patient = first.patient
        sub_hl = self.writer.hl(parent, "22", patient is not None)
        self.seg(
            "SBR",
            sub.responsibility,
            "18" if patient is None else None,
            sub.group_number,
            sub.group_name,
            sub.insurance_type_code,
            None,
            None,
            None,
            sub.claim_filing_indicator,
        )
        self.insured("IL", sub, demographics=True)
        self.payer(first.payer)
        if patient is not None:
            self.writer.hl(sub_hl, "23", False)
            self.seg("PAT", patient.relationship_code)
            self.seg(
                "NM1",
                "QC",
                "1",
                patient.last_name,
                patient.first_name,
                patient.middle_name,
                None,
                patient.suffix,
            )
            self.address(patient.address)
            self.seg("DMG", "D8", _d8(patient.birth_date), patient.sex)
        for claim in claims:
            if self.institutional:
                self.claim_837i(claim)
            else:
                self.claim_837p(claim)

    # 2300 ------------------------------------------------------------------------------

    def claim_837p(self, claim: Claim) -> None:
        seg = self.seg
        if len(claim.lines) > MAX_LINES_837P:
            raise X12WriteError(
                "LX: an 837P claim carries at most 50 service lines (2400 repeat)",
                code="TOO_MANY_LINES",
                segment="LX",
            )
        if len(claim.diagnoses) > MAX_DX_837P:
            raise X12WriteError(
                "HI: an 837P claim carries at most 12 diagnosis codes",
                code="TOO_MANY_DIAGNOSES",
                segment="HI",
            )
        causes: tuple[str | None, ...] = ()
        if claim.related_causes or claim.related_causes_state:
            causes = (*(*claim.related_causes, None, None, None)[:3], claim.related_causes_state)
        seg(
            "CLM",
            claim.patient_control_number,
            format_amount(claim.total_charge_cents),  # type: ignore[arg-type]
            None,
            None,
            (claim.place_of_service, "B", claim.frequency_code),
            claim.provider_signature,
            claim.assignment_participation,
            claim.benefits_assignment,
            claim.release_of_information,
            None,
            causes,
        )
        if claim.onset_date is not None:
            seg("DTP", "431", "D8", _d8(claim.onset_date))
        if claim.accident_date is not None:
            seg("DTP", "439", "D8", _d8(claim.accident_date))
        self.claim_refs(claim)
        if claim.diagnoses:
            first, *rest = claim.diagnoses
            seg(
                "HI",
                ("BK" if first.icd9 else "ABK", first.code),
                *[("BF" if dx.icd9 else "ABF", dx.code) for dx in rest],
            )
        if claim.referring is not None:
            self.provider("DN", claim.referring, None)
        if claim.rendering is not None:
            self.provider("82", claim.rendering, "PE")
        if claim.service_facility is not None:
            self.provider("77", claim.service_facility, None)
        if claim.supervising is not None:
            self.provider("DQ", claim.supervising, None)
        self.other_payers(claim)
        for number, line in enumerate(claim.lines, start=1):
            self.line_837p(claim, number, line)

    def claim_837i(self, claim: Claim) -> None:
        seg = self.seg
        seg(
            "CLM",
            claim.patient_control_number,
            format_amount(claim.total_charge_cents),  # type: ignore[arg-type]
            None,
            None,
            (claim.place_of_service, "A", claim.frequency_code),
            None,
            claim.assignment_participation,
            claim.benefits_assignment,
            claim.release_of_information,
        )
        if claim.statement_from is not None:
            seg(
                "DTP",
                "434",
                "RD8",
                f"{_d8(claim.statement_from)}-{_d8(claim.statement_to or claim.statement_from)}",
            )
        if claim.admission_date is not None:
            if claim.admission_hour is not None:
                seg("DTP", "435", "DT", f"{_d8(claim.admission_date)}{claim.admission_hour:02d}00")
            else:
                seg("DTP", "435", "D8", _d8(claim.admission_date))
        if claim.admission_type or claim.admission_source or claim.patient_status:
            seg("CL1", claim.admission_type, claim.admission_source, claim.patient_status)
        self.claim_refs(claim)
        self.hi_837i(claim)
        if claim.attending is not None:
            self.provider("71", claim.attending, "AT")
        if claim.operating is not None:
            self.provider("72", claim.operating, None)
        if claim.rendering is not None:
            self.provider("82", claim.rendering, None)
        if claim.service_facility is not None:
            self.provider("77", claim.service_facility, None)
        if claim.referring is not None:
            self.provider("DN", claim.referring, None)
        self.other_payers(claim)
        for number, line in enumerate(claim.lines, start=1):
            self.line_837i(claim, number, line)

    def claim_refs(self, claim: Claim) -> None:
        # TR3 order in 2300: REF*9F referral, REF*G1 prior authorization, REF*F8 original
        # reference, which frequency 7 (replacement) and 8 (void) require.
        if claim.referral_number:
            self.seg("REF", "9F", claim.referral_number)
        if claim.prior_authorization:
            self.seg("REF", "G1", claim.prior_authorization)
        if claim.original_claim_number:
            self.seg("REF", "F8", claim.original_claim_number)

    def hi_837i(self, claim: Claim) -> None:
        seg = self.seg

        def dx(qualifier: str, icd9_qualifier: str, d: Diagnosis) -> tuple[str | None, ...]:
            q = icd9_qualifier if d.icd9 else qualifier
            if d.present_on_admission:
                return (q, d.code, None, None, None, None, None, None, d.present_on_admission)
            return (q, d.code)

        if claim.diagnoses:
            seg("HI", dx("ABK", "BK", claim.diagnoses[0]))
        if claim.admitting_diagnosis is not None:
            seg("HI", dx("ABJ", "BJ", claim.admitting_diagnosis))
        if claim.patient_reason_diagnoses:
            seg("HI", *[dx("APR", "PR", d) for d in claim.patient_reason_diagnoses[:3]])
        others = [dx("ABF", "BF", d) for d in claim.diagnoses[1:]]
        procedures = [
            ("BBR" if i == 0 else "BBQ", p.code, "D8", _d8(p.date)) for i, p in enumerate(claim.procedures)
        ]
        for start in range(0, len(others), 12):
            seg("HI", *others[start : start + 12])
        if procedures:
            seg("HI", procedures[0])
        for start in range(1, len(procedures), 12):
            seg("HI", *procedures[start : start + 12])
        occurrences = [("BH", o.code, "D8", _d8(o.date)) for o in claim.occurrence_codes]
        for start in range(0, len(occurrences), 12):
            seg("HI", *occurrences[start : start + 12])
        values = [("BE", v.code, None, None, format_amount(v.amount_cents)) for v in claim.value_codes]
        for start in range(0, len(values), 12):
            seg("HI", *values[start : start + 12])
        conditions = [("BG", c) for c in claim.condition_codes]
        for start in range(0, len(conditions), 12):
            seg("HI", *conditions[start : start + 12])

    def cas(self, adjustments: tuple[CasAdjustment, ...]) -> None:
        """One CAS per group code, up to six reason/amount/quantity triplets each."""
        by_group: dict[str, list[CasAdjustment]] = {}
        for adj in adjustments:
            by_group.setdefault(adj.group, []).append(adj)
        for group, items in by_group.items():
            for start in range(0, len(items), MAX_CAS_TRIPLETS):
                values: list[str | None] = []
                for adj in items[start : start + MAX_CAS_TRIPLETS]:
                    values += [
                        adj.reason,
                        format_amount(adj.amount_cents),
                        None if adj.quantity is None else format_decimal(adj.quantity),
                    ]
                self.seg("CAS", group, *values)

    def other_payers(self, claim: Claim) -> None:
        seg = self.seg
        for other in claim.other_payers:
            sub = other.subscriber
            seg(
                "SBR",
                sub.responsibility,
                other.relationship_code,
                sub.group_number,
                sub.group_name,
                sub.insurance_type_code,
                None,
                None,
                None,
                sub.claim_filing_indicator,
            )
            self.cas(other.adjustments)
            if other.paid_cents is not None:
                seg("AMT", "D", format_amount(other.paid_cents))
            if other.remaining_patient_liability_cents is not None:
                seg("AMT", "EAF", format_amount(other.remaining_patient_liability_cents))
            seg("OI", None, None, other.benefits_assignment, None, None, other.release_of_information)
            self.insured("IL", sub, demographics=False)
            self.payer(other.payer)
            if other.adjudication_date is not None:
                seg("DTP", "573", "D8", _d8(other.adjudication_date))
            if other.payer_claim_control_number:
                seg("REF", "F8", other.payer_claim_control_number)

    # 2400 ------------------------------------------------------------------------------

    def procedure(
        self, qualifier: str, code: str | None, modifiers: tuple[str, ...], desc: str | None = None
    ) -> tuple[str | None, ...]:
        if len(modifiers) > 4:
            raise X12WriteError(
                "SV1 SV101-3..6: at most 4 procedure modifiers (a 5th would land in the description)",
                code="TOO_MANY_MODIFIERS",
                segment="SV1",
                element="SV101",
            )
        if desc:
            return (qualifier, code, *modifiers, *([None] * (4 - len(modifiers))), desc)
        return (qualifier, code, *modifiers)

    def line_common(self, line: ServiceLine) -> None:
        seg = self.seg
        if line.service_date is not None:
            if line.service_date_end is not None and line.service_date_end != line.service_date:
                seg("DTP", "472", "RD8", f"{_d8(line.service_date)}-{_d8(line.service_date_end)}")
            else:
                seg("DTP", "472", "D8", _d8(line.service_date))
        if line.line_control_number:
            seg("REF", "6R", line.line_control_number)

    def drug_and_adjudications(
        self, claim: Claim, number: int, line: ServiceLine, rendering_entity: str
    ) -> None:
        seg = self.seg
        if line.ndc:
            seg("LIN", None, "N4", line.ndc)
            seg(
                "CTP",
                None,
                None,
                None,
                None if line.drug_quantity is None else format_decimal(line.drug_quantity),
                (line.drug_unit,),
            )
        if line.rendering is not None:
            self.provider(rendering_entity, line.rendering, None if self.institutional else "PE")
        for other in claim.other_payers:
            for adj in other.line_adjudications:
                if adj.line_number != number:
                    continue
                seg(
                    "SVD",
                    other.payer.payer_id,
                    format_amount(adj.paid_cents),
                    self.procedure(adj.procedure_qualifier, adj.procedure, adj.modifiers),
                    adj.revenue_code,
                    format_decimal(adj.units),
                )
                self.cas(adj.adjustments)
                seg("DTP", "573", "D8", _d8(adj.adjudication_date))

    def line_837p(self, claim: Claim, number: int, line: ServiceLine) -> None:
        if len(line.diagnosis_pointers) > 4:
            raise X12WriteError(
                "SV1 SV107: at most 4 diagnosis pointers",
                code="TOO_MANY_POINTERS",
                segment="SV1",
                element="SV107",
            )
        seg = self.seg
        seg("LX", str(number))
        seg(
            "SV1",
            self.procedure(line.procedure_qualifier, line.procedure, line.modifiers, line.description),
            format_amount(line.charge_cents),
            line.unit_basis,
            format_decimal(line.units),
            line.place_of_service,
            None,
            tuple(str(p) for p in line.diagnosis_pointers),
        )
        self.line_common(line)
        self.drug_and_adjudications(claim, number, line, "82")

    def line_837i(self, claim: Claim, number: int, line: ServiceLine) -> None:
        seg = self.seg
        seg("LX", str(number))
        seg(
            "SV2",
            line.revenue_code,
            self.procedure(line.procedure_qualifier, line.procedure, line.modifiers, line.description)
            if line.procedure
            else None,
            format_amount(line.charge_cents),
            line.unit_basis,
            format_decimal(line.units),
            None,
            None if line.non_covered_cents is None else format_amount(line.non_covered_cents),
        )
        self.line_common(line)
        self.drug_and_adjudications(claim, number, line, "82")


# -- parsing --------------------------------------------------------------------------------


class X837ParseError(ValueError):
    """An 837 value could not be read (bad amount, date, structure) or the input is not X12.

    Carries X12 coordinates; the message names the element and rule, never the value.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        file: str | None = None,
        segment: str | None = None,
        segment_ordinal: int | None = None,
        element: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.file = file
        self.segment = segment
        self.segment_ordinal = segment_ordinal
        self.element = element

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "segment": self.segment,
            "segment_ordinal": self.segment_ordinal,
            "element": self.element,
        }


@dataclass(slots=True)
class Parsed837:
    """One 837 transaction set read back: its envelope coordinates and its batch."""

    control_number: str  # ST02
    implementation: str  # ST03 (or GS08 when ST03 is absent)
    kind: ClaimKind
    batch: Batch837
    interchange_control: str  # ISA13
    group_control: str  # GS06

    @property
    def claims(self) -> list[Claim]:
        return self.batch.claims

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "837",
            "control_number": self.control_number,
            "implementation": self.implementation,
            "kind": self.kind.value,
            "interchange_control": self.interchange_control,
            "group_control": self.group_control,
            "submitter": _jsonable(self.batch.submitter),
            "receiver": _jsonable(self.batch.receiver),
            "reference": self.batch.reference,
            "created": self.batch.created.isoformat() if self.batch.created else None,
            "transaction_type": self.batch.transaction_type,
            "claims": [_jsonable(c) for c in self.batch.claims],
        }


def _jsonable(value: Any) -> Any:
    """Dataclasses to JSON-ready dicts: ``*_cents`` become ``*`` amounts with two decimals."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if f.name.endswith("_cents"):
                out[f.name[: -len("_cents")]] = None if item is None else _money(item)
            else:
                out[f.name] = _jsonable(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format_decimal(value)
    return value


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


@dataclass(slots=True)
class _Party:
    """An NM1 entity and what follows it (N3/N4/DMG/REF/PER/PRV) while being read."""

    entity: str
    entity_type: str = ""
    name: str = ""
    first: str | None = None
    middle: str | None = None
    suffix: str | None = None
    id_qualifier: str | None = None
    identifier: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    country: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    taxonomy: str | None = None
    refs: dict[str, str] = field(default_factory=dict)
    contact: Contact | None = None

    def address(self) -> Address | None:
        if self.line1 is None and self.city is None:
            return None
        return Address(
            line1=self.line1 or "",
            city=self.city or "",
            state=self.state or "",
            zip_code=self.zip_code or "",
            line2=self.line2,
            country=self.country,
        )

    def provider(self) -> Provider:
        org = self.entity_type == "2"
        return Provider(
            npi=self.identifier if self.id_qualifier == "XX" else None,
            last_name=None if org else self.name,
            first_name=None if org else self.first,
            middle_name=None if org else self.middle,
            suffix=None if org else self.suffix,
            organization_name=self.name if org else None,
            taxonomy=self.taxonomy,
            address=self.address(),
        )

    def payer(self) -> Payer:
        return Payer(self.name, self.identifier or "", self.address(), self.id_qualifier or "PI")


@dataclass(slots=True)
class _OtherPayerBuild:
    sbr: Segment
    adjustments: list[CasAdjustment] = field(default_factory=list)
    paid: int | None = None
    eaf: int | None = None
    oi: Segment | None = None
    subscriber: _Party | None = None
    payer: _Party | None = None
    adjudication_date: date | None = None
    claim_control: str | None = None


@dataclass(slots=True)
class _LineBuild:
    values: dict[str, Any]
    rendering: _Party | None = None
    adjudications: list[tuple[str, dict[str, Any], list[CasAdjustment]]] = field(default_factory=list)


class _Parser:
    """A small state machine over the 837 segments (loops inferred from segment order)."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.results: list[Parsed837] = []
        self.interchange: InterchangeEnvelope | None = None
        self.group: GroupEnvelope | None = None
        self.seg: Segment | None = None

    # Values -----------------------------------------------------------------------------

    def fail(self, code: str, message: str, element: str | None = None) -> X837ParseError:
        seg = self.seg
        return X837ParseError(
            message,
            code=code,
            file=self.file,
            segment=seg.id if seg else None,
            segment_ordinal=seg.ordinal if seg else None,
            element=element,
        )

    def cents(self, text: str, ref: str) -> int:
        """An amount element as cents, with the limits of edi.numbers (length, ledger range)."""
        cents, problem = amount_cents(text)
        if problem is not None:
            raise self.fail("AMOUNT", f"{ref}: not a usable amount ({problem.message})", ref)
        return cents  # type: ignore[return-value]

    def decimal(self, text: str, ref: str) -> Decimal:
        value, problem = read_decimal(text)
        if problem is not None:
            raise self.fail("NUMBER", f"{ref}: not a usable number ({problem.message})", ref)
        return value  # type: ignore[return-value]

    def date8(self, text: str, ref: str) -> date:
        if len(text) >= 8 and text[:8].isdigit():
            try:
                return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
            except ValueError:
                pass
        raise self.fail("DATE", f"{ref}: not a valid CCYYMMDD date", ref)

    def dates(self, seg: Segment, ref: str) -> tuple[date, date | None]:
        fmt, text = seg.get(2), seg.get(3)
        if fmt == "RD8":
            start, _, end = text.partition("-")
            return self.date8(start, ref), self.date8(end, ref)
        return self.date8(text, ref), None

    # Driver -----------------------------------------------------------------------------

    def run(self, transaction_sets: Iterator[TransactionSet]) -> list[Parsed837]:
        for transaction_set in transaction_sets:
            if transaction_set.id != "837":
                continue  # other transaction sets in the file are not ours to read
            self.interchange, self.group = transaction_set.interchange, transaction_set.group
            self.seg = transaction_set.st
            self.start_transaction(transaction_set.st)
            for seg in transaction_set:
                self.seg = seg
                self.segment(seg)
            self.seg = transaction_set.se or self.seg
            self.end_transaction()
        return self.results

    def start_transaction(self, st: Segment) -> None:
        self.implementation = st.get(3) or (self.group.version if self.group else "")
        if any(guide in self.implementation for guide in _DENTAL_GUIDES):
            raise self.fail(
                "UNSUPPORTED_837D",
                f"837 {st.get(2)!r} is a dental claim ({self.implementation}): 837D is not read by "
                "this parser (837P X222 and 837I X223 only); nothing of the file was read as "
                "professional or institutional",
                "ST03",
            )
        self.kind = ClaimKind.INSTITUTIONAL if "X223" in self.implementation else ClaimKind.PROFESSIONAL
        self.control = st.get(2)
        self.claims: list[Claim] = []
        self.submitter: _Party | None = None
        self.receiver: _Party | None = None
        self.bht: Segment | None = None
        self.current: _Party | None = None
        self.bp: _Party | None = None
        self.pay_to: _Party | None = None
        self.bp_prv: str | None = None
        self.sub: _Party | None = None
        self.sbr: Segment | None = None
        self.payer_party: _Party | None = None
        self.patient: _Party | None = None
        self.pat_rel: str | None = None
        self.claim: dict[str, Any] | None = None
        self.claim_parties: dict[str, _Party] = {}
        self.others: list[_OtherPayerBuild] = []
        self.lines: list[_LineBuild] = []
        self.area = "header"
        self.built: dict[str, Any] = {}

    def end_transaction(self) -> None:
        self.finish_claim()
        submitter = self.submitter or _Party("41")
        receiver = self.receiver or _Party("40")
        bht = self.bht
        created = None
        if bht is not None and bht.get(4):
            day = self.date8(bht.get(4), "BHT04")
            hhmm = bht.get(5)
            hour = int(hhmm[:2]) if hhmm[:2].isdigit() else 0
            minute = int(hhmm[2:4]) if hhmm[2:4].isdigit() else 0
            created = datetime(day.year, day.month, day.day, min(hour, 23), min(minute, 59))
        isa, gs = self.interchange, self.group
        batch = Batch837(
            submitter=Submitter(
                submitter.name,
                submitter.identifier or "",
                submitter.contact or Contact(),
                submitter.first if submitter.entity_type == "1" else None,
            ),
            receiver=Receiver(receiver.name, receiver.identifier or ""),
            claims=self.claims,
            kind=self.kind,
            sender_qualifier=isa.sender_qualifier if isa else "ZZ",
            sender_id=isa.sender_id if isa else None,
            receiver_qualifier=isa.receiver_qualifier if isa else "ZZ",
            receiver_id=isa.receiver_id if isa else None,
            application_sender_code=gs.application_sender if gs else None,
            application_receiver_code=gs.application_receiver if gs else None,
            reference=bht.get(3) if bht else None,
            created=created,
            transaction_type=bht.get(6) if bht else "CH",
        )
        self.results.append(
            Parsed837(
                self.control,
                self.implementation,
                self.kind,
                batch,
                self.interchange.control_number if self.interchange else "",
                self.group.control_number if self.group else "",
            )
        )

    # Segments ---------------------------------------------------------------------------

    def segment(self, seg: Segment) -> None:
        sid = seg.id
        handler = _HANDLERS.get(sid)
        if handler is not None:
            handler(self, seg)

    def on_bht(self, seg: Segment) -> None:
        self.bht = seg

    def on_hl(self, seg: Segment) -> None:
        self.finish_claim()
        level = seg.get(3)
        self.area = "hl"
        if level == "20":
            self.bp = None
            self.pay_to = None
            self.bp_prv = None
            self.built.pop("bp", None)
        elif level == "22":
            self.sub = None
            self.sbr = None
            self.payer_party = None
            self.patient = None
            self.pat_rel = None
            self.built.pop("sub", None)
        elif level == "23":
            self.patient = None
            self.pat_rel = None

    def on_nm1(self, seg: Segment) -> None:
        entity = seg.get(1)
        party = _Party(
            entity,
            seg.get(2),
            seg.get(3),
            seg.get(4) or None,
            seg.get(5) or None,
            seg.get(7) or None,
            seg.get(8) or None,
            seg.get(9) or None,
        )
        self.current = party
        area = self.area
        if area == "header":
            if entity == "41":
                self.submitter = party
            elif entity == "40":
                self.receiver = party
            return
        if self.claim is None:
            if entity == "85":
                self.bp = party
            elif entity == "87":
                self.pay_to = party
            elif entity == "IL":
                self.sub = party
            elif entity == "PR":
                self.payer_party = party
            elif entity == "QC":
                self.patient = party
            return
        if area == "2320" or area == "2330":
            other = self.others[-1]
            if entity == "IL":
                other.subscriber = party
                self.area = "2330"
                return
            if entity == "PR":
                other.payer = party
                self.area = "2330"
                return
            return  # 2330C-I other payer providers: not carried by the dataclasses
        if self.area == "line" or self.area == "2430":
            if entity == "82" and self.lines:
                self.lines[-1].rendering = party
            return
        self.claim_parties.setdefault(entity, party)

    def on_n3(self, seg: Segment) -> None:
        if self.current is not None:
            self.current.line1 = seg.get(1)
            self.current.line2 = seg.get(2) or None

    def on_n4(self, seg: Segment) -> None:
        if self.current is not None:
            self.current.city = seg.get(1)
            self.current.state = seg.get(2)
            self.current.zip_code = seg.get(3)
            self.current.country = seg.get(4) or None

    def on_dmg(self, seg: Segment) -> None:
        if self.current is not None and seg.get(1) == "D8":
            self.current.birth_date = self.date8(seg.get(2), "DMG02")
            self.current.sex = seg.get(3) or None

    def on_per(self, seg: Segment) -> None:
        numbers: dict[str, str] = {}
        for i in (3, 5, 7):
            if seg.get(i):
                numbers.setdefault(seg.get(i), seg.get(i + 1))
        contact = Contact(
            name=seg.get(2) or None,
            phone=numbers.get("TE"),
            email=numbers.get("EM"),
            fax=numbers.get("FX"),
            phone_extension=numbers.get("EX"),
        )
        if self.current is not None and self.current.contact is None:
            self.current.contact = contact

    def on_prv(self, seg: Segment) -> None:
        if seg.get(1) == "BI" and self.claim is None:
            self.bp_prv = seg.get(3)
        elif self.current is not None:
            self.current.taxonomy = seg.get(3)

    def on_sbr(self, seg: Segment) -> None:
        if self.claim is None:
            self.sbr = seg
        else:
            self.others.append(_OtherPayerBuild(seg))
            self.area = "2320"

    def on_pat(self, seg: Segment) -> None:
        self.pat_rel = seg.get(1)

    def on_ref(self, seg: Segment) -> None:
        qualifier, value = seg.get(1), seg.get(2)
        if self.claim is None:
            if self.current is not None:
                self.current.refs.setdefault(qualifier, value)
            return
        area = self.area
        if area == "claim":
            key = {"9F": "referral_number", "G1": "prior_authorization", "F8": "original_claim_number"}.get(
                qualifier
            )
            if key:
                self.claim.setdefault(key, value)
        elif area == "2330" and qualifier == "F8" and self.others:
            self.others[-1].claim_control = value
        elif area == "line" and qualifier == "6R" and self.lines:
            self.lines[-1].values["line_control_number"] = value

    def on_clm(self, seg: Segment) -> None:
        self.finish_claim()
        self.claim = {"clm": seg}
        self.claim_parties = {}
        self.others = []
        self.lines = []
        self.area = "claim"
        self.current = None

    def on_dtp(self, seg: Segment) -> None:
        if self.claim is None:
            return
        qualifier = seg.get(1)
        area = self.area
        if area == "claim":
            if qualifier == "431":
                self.claim["onset_date"] = self.dates(seg, "DTP03")[0]
            elif qualifier == "439":
                self.claim["accident_date"] = self.dates(seg, "DTP03")[0]
            elif qualifier == "434":
                start, end = self.dates(seg, "DTP03")
                self.claim["statement_from"] = start
                self.claim["statement_to"] = end or start
            elif qualifier == "435":
                self.claim["admission_date"] = self.date8(seg.get(3), "DTP03")
                if seg.get(2) == "DT" and len(seg.get(3)) >= 10 and seg.get(3)[8:10].isdigit():
                    self.claim["admission_hour"] = int(seg.get(3)[8:10])
        elif area == "2330" and qualifier == "573" and self.others:
            self.others[-1].adjudication_date = self.date8(seg.get(3), "DTP03")
        elif area == "line" and qualifier == "472" and self.lines:
            start, end = self.dates(seg, "DTP03")
            self.lines[-1].values["service_date"] = start
            if end is not None and end != start:
                self.lines[-1].values["service_date_end"] = end
        elif area == "2430" and qualifier == "573" and self.lines and self.lines[-1].adjudications:
            self.lines[-1].adjudications[-1][1]["adjudication_date"] = self.date8(seg.get(3), "DTP03")

    def on_cl1(self, seg: Segment) -> None:
        if self.claim is not None:
            self.claim["admission_type"] = seg.get(1) or None
            self.claim["admission_source"] = seg.get(2) or None
            self.claim["patient_status"] = seg.get(3) or None

    def on_hi(self, seg: Segment) -> None:
        if self.claim is None:
            return
        for i in range(1, len(seg.elements)):
            parts = seg.components(i)
            if len(parts) < 2:
                continue
            qualifier, code = parts[0], parts[1]
            ref = f"HI{i:02d}"
            poa = parts[8] if len(parts) > 8 and parts[8] else None
            c = self.claim
            if qualifier in ("ABK", "BK"):
                c.setdefault("principal", Diagnosis(code, qualifier == "BK", poa))
            elif qualifier in ("ABF", "BF"):
                c.setdefault("other_dx", []).append(Diagnosis(code, qualifier == "BF", poa))
            elif qualifier in ("ABJ", "BJ"):
                c["admitting_diagnosis"] = Diagnosis(code, qualifier == "BJ", poa)
            elif qualifier in ("APR", "PR"):
                c.setdefault("patient_reason_diagnoses", []).append(Diagnosis(code, qualifier == "PR", poa))
            elif qualifier in ("BBR", "BBQ", "BR", "BQ"):
                when = self.date8(parts[3], ref + "-4") if len(parts) > 3 else None
                if when is not None:
                    c.setdefault("procedures", []).append(Procedure(code, when))
            elif qualifier == "BH" and len(parts) > 3:
                c.setdefault("occurrence_codes", []).append(
                    OccurrenceCode(code, self.date8(parts[3], ref + "-4"))
                )
            elif qualifier == "BE" and len(parts) > 4:
                c.setdefault("value_codes", []).append(ValueCode(code, self.cents(parts[4], ref + "-5")))
            elif qualifier == "BG":
                c.setdefault("condition_codes", []).append(code)

    def on_cas(self, seg: Segment) -> None:
        group = seg.get(1)
        adjustments: list[CasAdjustment] = []
        for i in range(2, 19, 3):
            reason = seg.get(i)
            if not reason:
                continue
            amount = self.cents(seg.get(i + 1) or "0", f"CAS{i + 1:02d}")
            quantity = self.decimal(seg.get(i + 2), f"CAS{i + 2:02d}") if seg.get(i + 2) else None
            adjustments.append(CasAdjustment(group, reason, amount, quantity))
        if self.area == "2320" and self.others:
            self.others[-1].adjustments.extend(adjustments)
        elif self.area == "2430" and self.lines and self.lines[-1].adjudications:
            self.lines[-1].adjudications[-1][2].extend(adjustments)

    def on_amt(self, seg: Segment) -> None:
        if self.area == "2320" and self.others:
            if seg.get(1) == "D":
                self.others[-1].paid = self.cents(seg.get(2), "AMT02")
            elif seg.get(1) == "EAF":
                self.others[-1].eaf = self.cents(seg.get(2), "AMT02")

    def on_oi(self, seg: Segment) -> None:
        if self.area == "2320" and self.others:
            self.others[-1].oi = seg

    def on_sv3(self, seg: Segment) -> None:
        raise self.fail(
            "UNSUPPORTED_837D",
            "SV3 is a dental service line (837D): 837D is not read by this parser "
            "(837P X222 and 837I X223 only)",
            "SV301",
        )

    def on_lx(self, seg: Segment) -> None:
        if self.claim is None:
            return
        self.lines.append(_LineBuild({}))
        self.area = "line"
        self.current = None

    def _procedure(self, parts: list[str]) -> tuple[str, str | None, tuple[str, ...], str | None]:
        qualifier = parts[0] if parts else "HC"
        code = parts[1] if len(parts) > 1 else None
        modifiers = tuple(m for m in parts[2:6] if m)
        desc = parts[6] if len(parts) > 6 and parts[6] else None
        return qualifier, code, modifiers, desc

    def on_sv1(self, seg: Segment) -> None:
        if not self.lines:
            return
        qualifier, code, modifiers, desc = self._procedure(seg.components(1))
        pointers: list[int] = []
        for p in seg.components(7):
            pointer = parse_count(p, max_length=2)
            if pointer is None:
                raise self.fail("POINTER", "SV107: diagnosis pointers are numbers 1-12", "SV107")
            pointers.append(pointer)
        self.lines[-1].values.update(
            procedure=code,
            procedure_qualifier=qualifier,
            modifiers=modifiers,
            description=desc,
            charge_cents=self.cents(seg.get(2) or "0", "SV102"),
            unit_basis=seg.get(3) or "UN",
            units=self.decimal(seg.get(4), "SV104") if seg.get(4) else Decimal(1),
            place_of_service=seg.get(5) or None,
            diagnosis_pointers=tuple(pointers),
        )

    def on_sv2(self, seg: Segment) -> None:
        if not self.lines:
            return
        values: dict[str, Any] = {"revenue_code": seg.get(1) or None}
        if seg.get(2):
            qualifier, code, modifiers, desc = self._procedure(seg.components(2))
            values.update(
                procedure=code, procedure_qualifier=qualifier, modifiers=modifiers, description=desc
            )
        else:
            values["procedure"] = None
        values.update(
            charge_cents=self.cents(seg.get(3) or "0", "SV203"),
            unit_basis=seg.get(4) or "UN",
            units=self.decimal(seg.get(5), "SV205") if seg.get(5) else Decimal(1),
            non_covered_cents=self.cents(seg.get(7), "SV207") if seg.get(7) else None,
            diagnosis_pointers=(),
        )
        self.lines[-1].values.update(values)

    def on_lin(self, seg: Segment) -> None:
        if self.area == "line" and self.lines:
            self.lines[-1].values["ndc"] = seg.get(3)

    def on_ctp(self, seg: Segment) -> None:
        if self.area == "line" and self.lines:
            values = self.lines[-1].values
            values["drug_quantity"] = self.decimal(seg.get(4), "CTP04") if seg.get(4) else None
            values["drug_unit"] = seg.component(5, 1) or None

    def on_svd(self, seg: Segment) -> None:
        if not self.lines:
            return
        qualifier, code, modifiers, _ = self._procedure(seg.components(3))
        values = {
            "paid_cents": self.cents(seg.get(2) or "0", "SVD02"),
            "procedure": code or "",
            "procedure_qualifier": qualifier,
            "modifiers": modifiers,
            "revenue_code": seg.get(4) or None,
            "units": self.decimal(seg.get(5), "SVD05") if seg.get(5) else Decimal(1),
        }
        self.lines[-1].adjudications.append((seg.get(1), values, []))
        self.area = "2430"

    # Building ---------------------------------------------------------------------------

    def billing_provider(self) -> BillingProvider:
        cached = self.built.get("bp")
        if cached is not None:
            return cached
        bp = self.bp or _Party("85")
        tax_qualifier, tax_id = "EI", ""
        for q in ("EI", "SY"):
            if q in bp.refs:
                tax_qualifier, tax_id = q, bp.refs[q]
                break
        org = bp.entity_type != "1"
        pay_to_address = self.pay_to.address() if self.pay_to is not None else None
        built = BillingProvider(
            npi=bp.identifier or "",
            address=bp.address() or Address("", "", "", ""),
            tax_id=tax_id,
            organization_name=bp.name if org else None,
            last_name=None if org else bp.name,
            first_name=None if org else bp.first,
            middle_name=None if org else bp.middle,
            suffix=None if org else bp.suffix,
            tax_id_qualifier=tax_qualifier,
            taxonomy=self.bp_prv,
            contact=bp.contact,
            pay_to=PayToAddress(pay_to_address) if pay_to_address is not None else None,
        )
        self.built["bp"] = built
        return built

    def subscriber(self, party: _Party | None, sbr: Segment | None) -> Subscriber:
        p = party or _Party("IL")
        return Subscriber(
            last_name=p.name,
            member_id=p.identifier or "",
            first_name=p.first,
            middle_name=p.middle,
            suffix=p.suffix,
            birth_date=p.birth_date,
            sex=p.sex,
            address=p.address(),
            group_number=(sbr.get(3) or None) if sbr else None,
            group_name=(sbr.get(4) or None) if sbr else None,
            responsibility=sbr.get(1) if sbr else "P",
            claim_filing_indicator=sbr.get(9) if sbr else "CI",
            insurance_type_code=(sbr.get(5) or None) if sbr else None,
        )

    def parties(self) -> tuple[Subscriber, Payer, Patient | None]:
        cached = self.built.get("sub")
        if cached is None:
            payer = (self.payer_party or _Party("PR")).payer()
            cached = (self.subscriber(self.sub, self.sbr), payer)
            self.built["sub"] = cached
        patient = None
        if self.patient is not None:
            p = self.patient
            patient = Patient(
                last_name=p.name,
                first_name=p.first,
                relationship_code=self.pat_rel or "",
                birth_date=p.birth_date or date.min,
                sex=p.sex or "",
                address=p.address() or Address("", "", "", ""),
                middle_name=p.middle,
                suffix=p.suffix,
            )
        return cached[0], cached[1], patient

    def finish_claim(self) -> None:
        c = self.claim
        if c is None:
            return
        self.claim = None
        clm: Segment = c.pop("clm")
        self.seg = clm
        subscriber, payer, patient = self.parties()
        diagnoses: list[Diagnosis] = []
        if "principal" in c:
            diagnoses.append(c.pop("principal"))
        diagnoses.extend(c.pop("other_dx", []))
        others = [self.other_payer(o) for o in self.others]
        lines: list[ServiceLine] = []
        for number, line in enumerate(self.lines, start=1):
            values = line.values
            if "charge_cents" not in values:
                # LX with no SV1/SV2 (an SV3 dental line, or none at all): a line without a
                # procedure or a charge would be made up, so the set is refused instead.
                raise self.fail(
                    "LINE_WITHOUT_SERVICE",
                    f"claim service line {number} (LX) has no SV1 or SV2 service segment "
                    f"(read as {self.kind.value}); it cannot be read",
                    "LX01",
                )
            values.setdefault("procedure", None)
            values.setdefault("charge_cents", 0)
            if line.rendering is not None:
                values["rendering"] = line.rendering.provider()
            lines.append(ServiceLine(**values))
            for payer_id, adj_values, cas in line.adjudications:
                adj_values.setdefault("adjudication_date", date.min)
                adjudication = LineAdjudication(number, adjustments=tuple(cas), **adj_values)
                for i, other in enumerate(others):
                    if other.payer.payer_id == payer_id:
                        others[i] = _with_line(other, adjudication)
                        break
        parties = self.claim_parties
        institutional = self.kind is ClaimKind.INSTITUTIONAL
        causes = clm.components(11)
        related = tuple(x for x in causes[:3] if x)
        state = causes[3] if len(causes) > 3 and causes[3] else None
        claim = Claim(
            patient_control_number=clm.get(1),
            billing_provider=self.billing_provider(),
            subscriber=subscriber,
            payer=payer,
            lines=lines,
            diagnoses=diagnoses,
            kind=self.kind,
            patient=patient,
            total_charge_cents=self.cents(clm.get(2) or "0", "CLM02"),
            place_of_service=clm.component(5, 1),
            frequency_code=clm.component(5, 3),
            provider_signature=clm.get(6) if not institutional else "Y",
            assignment_participation=clm.get(7),
            benefits_assignment=clm.get(8),
            release_of_information=clm.get(9),
            related_causes=related,
            related_causes_state=state,
            referring=parties["DN"].provider() if "DN" in parties else None,
            rendering=parties["82"].provider() if "82" in parties else None,
            supervising=parties["DQ"].provider() if "DQ" in parties else None,
            service_facility=parties["77"].provider() if "77" in parties else None,
            attending=parties["71"].provider() if "71" in parties else None,
            operating=parties["72"].provider() if "72" in parties else None,
            other_payers=others,
            **c,
        )
        self.claims.append(claim)

    def other_payer(self, o: _OtherPayerBuild) -> OtherPayer:
        oi = o.oi
        return OtherPayer(
            payer=(o.payer or _Party("PR")).payer(),
            subscriber=self.subscriber(o.subscriber, o.sbr),
            relationship_code=o.sbr.get(2),
            paid_cents=o.paid,
            adjustments=tuple(o.adjustments),
            remaining_patient_liability_cents=o.eaf,
            payer_claim_control_number=o.claim_control,
            adjudication_date=o.adjudication_date,
            benefits_assignment=oi.get(3) if oi else "Y",
            release_of_information=oi.get(6) if oi else "Y",
        )


def _with_line(other: OtherPayer, adjudication: LineAdjudication) -> OtherPayer:
    return OtherPayer(
        payer=other.payer,
        subscriber=other.subscriber,
        relationship_code=other.relationship_code,
        paid_cents=other.paid_cents,
        adjustments=other.adjustments,
        remaining_patient_liability_cents=other.remaining_patient_liability_cents,
        payer_claim_control_number=other.payer_claim_control_number,
        adjudication_date=other.adjudication_date,
        line_adjudications=(*other.line_adjudications, adjudication),
        benefits_assignment=other.benefits_assignment,
        release_of_information=other.release_of_information,
    )


_HANDLERS: dict[str, Callable[[_Parser, Segment], None]] = {
    "BHT": _Parser.on_bht,
    "HL": _Parser.on_hl,
    "NM1": _Parser.on_nm1,
    "N3": _Parser.on_n3,
    "N4": _Parser.on_n4,
    "DMG": _Parser.on_dmg,
    "PER": _Parser.on_per,
    "PRV": _Parser.on_prv,
    "SBR": _Parser.on_sbr,
    "PAT": _Parser.on_pat,
    "REF": _Parser.on_ref,
    "CLM": _Parser.on_clm,
    "DTP": _Parser.on_dtp,
    "CL1": _Parser.on_cl1,
    "HI": _Parser.on_hi,
    "CAS": _Parser.on_cas,
    "AMT": _Parser.on_amt,
    "OI": _Parser.on_oi,
    "LX": _Parser.on_lx,
    "SV1": _Parser.on_sv1,
    "SV2": _Parser.on_sv2,
    "SV3": _Parser.on_sv3,
    "LIN": _Parser.on_lin,
    "CTP": _Parser.on_ctp,
    "SVD": _Parser.on_svd,
}


def parse_837(source: Source, *, file: str | None = None) -> list[Parsed837]:
    """Read every 837 transaction set in ``source`` (path, bytes, str or binary handle).

    Other transaction sets in the file are skipped. Raises :class:`X837ParseError` for
    input that is not X12 or values that cannot be read; never a bare exception.
    """
    name = file or (os.fspath(source) if isinstance(source, os.PathLike) else None)
    parser = _Parser(name)
    try:
        return parser.run(iter_transaction_sets(source, file=file))
    except X12SyntaxError as exc:
        raise X837ParseError(
            exc.message, code=exc.code, file=exc.file or name, segment_ordinal=exc.segment_ordinal
        ) from exc
    except X837ParseError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise parser.fail(
            "UNREADABLE_837", f"the 837 structure cannot be read ({type(exc).__name__})"
        ) from exc
