"""The simulated payer answering 270s with realistic 271s (batch files and real-time HTTP).

Every inquiry is answered from the 270 itself, deterministically. The member id's
prefix picks the scenario (synthetic ids only; the demo's ids never start with ELG):

| member id prefix | answer |
|---|---|
| ``ELGNF``   | subscriber not found: 2100C ``AAA*N**75*C`` (correct and resubmit) |
| ``ELGIN``   | coverage ended: ``EB*6`` with plan dates that end before the date of service |
| ``ELGCOB``  | active, and another payer is primary: ``EB*R`` + ``MSG`` + 2120 ``NM1*PRP`` |
| ``ELGBUSY`` | the payer cannot answer now: 2100A ``AAA*N**42*R`` (resubmission allowed) |
| ``ELGFIX``  | active under a corrected member id (NM109 + ``01``, ``INS*Y*18*001*25``) |
| ``ELGBAD``  | a malformed 271 (EB01 ``ZZ``), which our validator rejects with a 999 |
| ``ELGSLOW`` | real time only: the endpoint waits ``slow_seconds`` before answering |
| anything else | active, with the plan the 835 adjudication uses (``rules.plan_for``) |

Active answers carry, for service type 30: plan begin (``DTP*346``, 1 January of the
service year), individual and family deductible (``EB*C``, EB06 23 total and 29
remaining; $150.00 met so far, or the whole deductible if smaller), coinsurance
(``EB*A``, in network and, for commercial plans, 40 % out of network), out-of-pocket
maximum (``EB*G``: $3,000.00 individual, $150.00 met); the $30.00 office-visit copay
(``EB*B`` on 98) on copay plans; ``EB*1`` for each other service type asked, with
EB11 = Y (prior authorization) for 62 (MRI/CAT scan) and for the advanced-imaging
procedures the 277CA front end requires an authorization for.

A 270 that fails our X279A1 guide gets our 999 instead of a 271.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from claims_server.simulator.rules import PRIOR_AUTH_PROCEDURES, Plan, plan_for
from edi.ack import acknowledge
from edi.reader import X12SyntaxError, read_segments
from edi.validate import validate
from edi.x270 import EligibilityInquiry, Envelope, Member, parse_270
from edi.x271 import (
    Benefit,
    BenefitDate,
    EligibilityResponse,
    Entity,
    MemberResponse,
    RequestValidation,
    Trace,
    generate_271,
)
from eligibility.transport import (
    ACK_PAYLOAD_TYPE,
    CORE_RULE_VERSION,
    REQUEST_PAYLOAD_TYPE,
    RESPONSE_PAYLOAD_TYPE,
    TransportFailure,
    encode_form,
    parse_envelope,
)

ANSWERED = "eligibility-answered"
MET_SO_FAR_CENTS = 15_000
OUT_OF_POCKET_CENTS = 300_000
OFFICE_COPAY_SERVICE = "98"
IMAGING_SERVICE = "62"
# Payer ids whose plan follows a government filing indicator (demo payers).
_FILING_BY_PAYER = {"DEMOMCRB": "MB", "DEMOMCD": "MC"}
_INSURANCE_TYPE = {"Medicare Part B": "MB", "Medicaid": "MC"}
OTHER_PRIMARY_PAYER = ("DEMO OTHER HEALTH PLAN", "DEMOOTHER")


def is_270(content: bytes) -> bool:
    """Whether the interchange's first transaction set is a 270."""
    try:
        for seg in read_segments(content):
            if seg.id == "ST":
                return seg.get(1) == "270"
    except X12SyntaxError:
        return False
    return False


def _plan(payer_id: str) -> Plan:
    return plan_for(payer_id, _FILING_BY_PAYER.get(payer_id, "CI"))


def _echo(member: Member, entity_code: str, *, member_id: str | None = None) -> Entity:
    return Entity(
        entity_code,
        "1",
        member.last_name,
        member.first_name,
        member.middle_name,
        member.suffix,
        "MI" if member_id else "",
        member_id or "",
    )


def _financials(plan: Plan) -> list[Benefit]:
    """Deductible, coinsurance and out-of-pocket for service type 30 (see module doc)."""
    out: list[Benefit] = []
    if plan.deductible_cents:
        for level, total in (("IND", plan.deductible_cents), ("FAM", plan.deductible_cents * 2)):
            met = min(MET_SO_FAR_CENTS, total)
            out.append(Benefit("C", level, ("30",), time_period="23", amount_cents=total, in_network="Y"))
            out.append(
                Benefit("C", level, ("30",), time_period="29", amount_cents=total - met, in_network="Y")
            )
    if plan.coinsurance_percent:
        out.append(
            Benefit("A", "IND", ("30",), percent=Decimal(plan.coinsurance_percent) / 100, in_network="Y")
        )
        if plan.name.startswith("Commercial"):
            out.append(Benefit("A", "IND", ("30",), percent=Decimal("0.4"), in_network="N"))
        met = min(MET_SO_FAR_CENTS, plan.deductible_cents)
        out.append(
            Benefit("G", "IND", ("30",), time_period="23", amount_cents=OUT_OF_POCKET_CENTS, in_network="Y")
        )
        out.append(
            Benefit(
                "G", "IND", ("30",), time_period="29", amount_cents=OUT_OF_POCKET_CENTS - met, in_network="Y"
            )
        )
    if plan.office_copay_cents:
        out.append(
            Benefit(
                "B",
                "IND",
                (OFFICE_COPAY_SERVICE,),
                time_period="27",
                amount_cents=plan.office_copay_cents,
                in_network="Y",
                messages=["COPAY APPLIES TO OFFICE VISITS; DEDUCTIBLE WAIVED"],
            )
        )
    return out


def _benefits(inquiry: EligibilityInquiry, plan: Plan, scenario: str) -> list[Benefit]:
    service_day = inquiry.service_date or date.today()
    year_start = date(service_day.year, 1, 1)
    insurance_type = _INSURANCE_TYPE.get(plan.name, "HM" if plan.office_copay_cents else "C1")
    if scenario == "ELGIN":
        ended = service_day.replace(day=1) - timedelta(days=1)
        return [
            Benefit(
                "6",
                "IND",
                ("30",),
                dates=[BenefitDate("346", date(service_day.year - 1, 1, 1)), BenefitDate("347", ended)],
                messages=["COVERAGE TERMINATED"],
            )
        ]
    code = "ZZ" if scenario == "ELGBAD" else "1"
    out = [
        Benefit(
            code, "IND", ("30",), insurance_type, plan.name.upper(), dates=[BenefitDate("346", year_start)]
        )
    ]
    for service_type in inquiry.service_types:
        if service_type != "30":
            out.append(
                Benefit(
                    "1",
                    "IND",
                    (service_type,),
                    authorization_required="Y" if service_type == IMAGING_SERVICE else "N",
                    in_network="Y",
                )
            )
    for question in inquiry.inquiries:
        if question.procedure_code:
            needs_auth = question.procedure_code in PRIOR_AUTH_PROCEDURES
            out.append(
                Benefit(
                    "1",
                    "IND",
                    procedure=("HC", question.procedure_code),
                    authorization_required="Y" if needs_auth else "N",
                    in_network="Y",
                )
            )
    out.extend(_financials(plan))
    if scenario == "ELGCOB":
        name, payer_id = OTHER_PRIMARY_PAYER
        out.append(
            Benefit(
                "R",
                "",
                ("30",),
                "C1",
                messages=["OTHER PAYER IS PRIMARY"],
                entities=[Entity("PRP", "2", name, id_qualifier="PI", identifier=payer_id)],
            )
        )
    return out


def _scenario(member_id: str) -> str:
    for prefix in ("ELGBUSY", "ELGSLOW", "ELGCOB", "ELGFIX", "ELGBAD", "ELGNF", "ELGIN"):
        if member_id.startswith(prefix):
            return prefix
    return ""


def answer_inquiry(inquiry: EligibilityInquiry) -> EligibilityResponse:
    """The 271 transaction set answering one 270 inquiry (see module doc)."""
    scenario = _scenario(inquiry.subscriber.member_id)
    payer = Entity("PR", "2", inquiry.payer.name, id_qualifier="PI", identifier=inquiry.payer.identifier)
    response = EligibilityResponse("", purpose="11", reference=inquiry.reference, source=payer)
    if scenario == "ELGBUSY":
        payer.rejections.append(RequestValidation(False, "42", "R", "2100A"))
        return response
    provider = inquiry.provider
    response.receiver = Entity(
        provider.entity_code,
        provider.entity_type,
        provider.name,
        provider.first_name,
        id_qualifier=provider.id_qualifier,
        identifier=provider.identifier,
    )
    trace = Trace("2", inquiry.trace_number, inquiry.trace_originator)
    member_id = inquiry.subscriber.member_id
    if scenario == "ELGFIX":
        member_id = f"{member_id}01"
    subscriber = MemberResponse("subscriber", _echo(inquiry.subscriber, "IL", member_id=member_id))
    if scenario == "ELGFIX":
        subscriber.relationship, subscriber.maintenance_type, subscriber.maintenance_reason = (
            "18",
            "001",
            "25",
        )
    response.subscribers.append(subscriber)
    patient = subscriber
    if inquiry.dependent is not None:
        patient = MemberResponse("dependent", _echo(inquiry.dependent, "03"))
        patient.relationship = inquiry.dependent.relationship or "19"
        subscriber.dependents.append(patient)
    patient.traces.append(trace)
    who = inquiry.patient
    patient.birth_date, patient.sex = who.birth_date, who.sex
    if scenario == "ELGNF":
        subscriber.rejections.append(RequestValidation(False, "75", "C", "2100C"))
        subscriber.dependents.clear()
        if patient is not subscriber:
            subscriber.traces.append(trace)
        return response
    patient.benefits = _benefits(inquiry, _plan(inquiry.payer.identifier), scenario)
    return response


def _control(isa13: str) -> int:
    base = int(isa13) if isa13.isdigit() else 0
    return base % 999_999_999 + 1


def answer_270(content: bytes, *, name: str = "270.x12", when: datetime | None = None) -> tuple[str, str]:
    """("271", text) answering every inquiry of a 270 interchange, or ("999"/"TA1", text) when
    the 270 fails our X279A1 guide. Raises LookupError when the content is not X12."""
    when = when or datetime.now()
    report = validate(content, file=name)
    parsed = parse_270(content, file=name)
    control = _control(parsed.isa13)
    if not report.valid or not parsed.inquiries:
        ack = acknowledge(report, control_number=control, when=when)
        return ack.kind, ack.text
    envelope = Envelope(
        sender_id=parsed.receiver_id or "SIMPAYER",
        receiver_id=parsed.sender_id or "UNKNOWN",
        application_sender=parsed.application_receiver or "SIMPAYER",
        application_receiver=parsed.application_sender or "UNKNOWN",
        control_number=control,
        usage=parsed.usage if parsed.usage in ("P", "T") else "P",
        when=when,
    )
    return "271", generate_271([answer_inquiry(i) for i in parsed.inquiries], envelope)


def _write_atomic(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{name}.part"
    temp.write_text(text, encoding="ascii", newline="")
    os.replace(temp, folder / name)


def answer_270_file(content: bytes, name: str, inbox: Path) -> dict[str, Any]:
    """Batch: write the 271 (or our 999) for one 270 file into the inbox; what was decided."""
    try:
        kind, text = answer_270(content, name=name)
    except LookupError:
        return {"file": name, "answer": None, "error": "not an X12 interchange"}
    stem = "".join(ch for ch in Path(name).stem if ch.isalnum() or ch in "-_") or "270"
    _write_atomic(inbox, f"{kind}-{stem}.x12", text)
    return {"file": name, "answer": kind}


# --------------------------------------------------------------------------------------
# Real time: the CORE connectivity endpoint
# --------------------------------------------------------------------------------------
def _reply(fields: dict[str, str], status: int = 200) -> Response:
    body, content_type = encode_form(fields)
    return Response(body, status=status, content_type=content_type)


def core_endpoint(
    *, slow_seconds: float = 3.0, sleep: Callable[[float], None] = time.sleep
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app speaking the CORE envelope: POST a 270, get the 271 (or our 999) back."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.method != "POST":
            return Response("POST a CORE envelope", status=405)(environ, start_response)
        try:
            envelope = parse_envelope(request.form.to_dict())
        except TransportFailure as exc:
            return _reply({"ErrorCode": "EnvelopeError", "ErrorMessage": exc.message}, 400)(
                environ, start_response
            )
        common = {
            "ProcessingMode": envelope.processing_mode,
            "PayloadID": envelope.payload_id,
            "TimeStamp": datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SenderID": envelope.receiver_id,
            "ReceiverID": envelope.sender_id,
            "CORERuleVersion": CORE_RULE_VERSION,
        }
        if envelope.payload_type != REQUEST_PAYLOAD_TYPE:
            fields = {
                **common,
                "PayloadType": envelope.payload_type,
                "ErrorCode": "PayloadTypeIncorrect",
                "ErrorMessage": f"expected {REQUEST_PAYLOAD_TYPE}",
                "Payload": "",
            }
            return _reply(fields, 400)(environ, start_response)
        payload = envelope.payload.encode("utf-8")
        parsed = parse_270(payload)
        if any(_scenario(i.subscriber.member_id) == "ELGSLOW" for i in parsed.inquiries):
            sleep(slow_seconds)
        try:
            kind, text = answer_270(payload, name="realtime.270")
        except LookupError:
            fields = {
                **common,
                "PayloadType": envelope.payload_type,
                "ErrorCode": "Payload",
                "ErrorMessage": "the payload is not an X12 interchange",
                "Payload": "",
            }
            return _reply(fields, 400)(environ, start_response)
        payload_type = RESPONSE_PAYLOAD_TYPE if kind == "271" else ACK_PAYLOAD_TYPE
        fields = {
            **common,
            "PayloadType": payload_type,
            "Payload": text,
            "ErrorCode": "Success",
            "ErrorMessage": "",
        }
        return _reply(fields)(environ, start_response)

    return app


__all__ = ["ANSWERED", "answer_270", "answer_270_file", "answer_inquiry", "core_endpoint", "is_270"]
