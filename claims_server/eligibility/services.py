"""Eligibility checks: ask the payer (real time or batch), store and audit every answer.

A check is one :class:`EligibilityCheck` row. Its life:

1. ``start_check`` builds the 270 from the coverage (``eligibility.request``), stores it
   (encrypted ``EdiFile``, kind 270) and the row (``pending``), and audits the creation;
2. real time: ``run_realtime`` posts it in a CAQH CORE envelope to the route's
   ``eligibility_url`` (no database transaction is open while bytes travel);
   batch: ``send_batch`` puts many checks in one 270 interchange on the clearinghouse
   link (folder or SFTP) and marks them ``sent``; ``poll_answers`` reads the 271s back;
3. ``record_answer`` validates the 271 against X279A1 (a malformed one is never trusted:
   status ``error``, our 999 stored, retry planned), summarizes it
   (``eligibility.answer.read_271``) and stores status + summary; AAA rejections and
   not-found answers are ``error`` with the AAA codes and the retry plan;
   ``record_failure`` stores timeouts (``timeout``) and transport errors (``error``)
   with their retry plan.

Nothing here raises for a bad answer: every outcome is a stored result. The summary
JSON holds no PHI (no names, no member id); the 270 and 271 themselves are kept
encrypted in ``edi_files``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.api_common.audit import audit
from claims_server.clearinghouse.services import route_transport
from claims_server.clearinghouse.transport import Transport, TransportError
from claims_server.db import unit_of_work
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import (
    AuditAction,
    ClearinghouseRoute,
    Coverage,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    EligibilityCheck,
    Encounter,
    FileDirection,
)
from claims_server.models.common import utcnow
from claims_server.models.eligibility import EligibilityStatus
from claims_server.models.submissions import ControlNumberKind
from claims_server.security.ownership import scope_query
from claims_server.security.principal import Principal
from claims_server.submission.control_numbers import allocate
from coding.scrubber import EligibilityFacts
from edi.ack import acknowledge
from edi.x270 import EligibilityInquiry, Envelope, generate_270, parse_270
from edi.x271 import parse_271
from eligibility.answer import read_271
from eligibility.request import CoverageFacts, PersonFacts, ProviderFacts, RequestError, build_inquiry
from eligibility.summary import (
    BenefitsSummary,
    RetryPlan,
    from_json,
    malformed_plan,
    scrub_facts,
    timeout_plan,
)
from eligibility.transport import RealTimeClient, TransportFailure

ClientFactory = Callable[[ClearinghouseRoute], RealTimeClient]
TransportFactory = Callable[[ClearinghouseRoute], Transport]

_STATUS = {
    "active": EligibilityStatus.ACTIVE,
    "inactive": EligibilityStatus.INACTIVE,
    "not_found": EligibilityStatus.ERROR,
    "rejected": EligibilityStatus.ERROR,
    "error": EligibilityStatus.ERROR,
}
DEFAULT_TIMEOUT_SECONDS = 20.0
RECHECK_AFTER = timedelta(hours=20)  # the nightly batch skips coverages checked more recently


class EligibilityUnavailable(Unprocessable):
    """The coverage's payer cannot be asked (no route, no endpoint, payer takes no 270)."""


# -- building the request -------------------------------------------------------------------------


def coverage_facts(coverage: Coverage) -> CoverageFacts:
    patient = coverage.patient
    person = PersonFacts(
        patient.last_name,
        patient.first_name,
        patient.birth_date,
        patient.sex or "",
        patient.middle_name or "",
    )
    subscriber = None
    if not coverage.is_self:
        subscriber = PersonFacts(
            coverage.subscriber_last_name or "",
            coverage.subscriber_first_name or "",
            coverage.subscriber_birth_date,
            coverage.subscriber_sex or "",
            coverage.subscriber_middle_name or "",
        )
    return CoverageFacts(
        payer_name=coverage.payer.name,
        payer_id=coverage.payer.payer_id,
        member_id=coverage.member_id,
        patient=person,
        relationship=coverage.relationship_code.value,
        subscriber=subscriber,
        group_number=coverage.group_number or "",
    )


def route_of(coverage: Coverage) -> ClearinghouseRoute:
    """The clearinghouse route that reaches the coverage's payer (422 when there is none)."""
    payer = coverage.payer
    if not payer.supports_eligibility:
        raise EligibilityUnavailable(f"payer {payer.payer_id} does not accept eligibility inquiries (270)")
    if payer.route is None:
        raise EligibilityUnavailable(f"payer {payer.payer_id} has no clearinghouse route")
    return payer.route


def _inquiry(
    coverage: Coverage, trace: str, service_date: date, types: Sequence[str], procedures: Sequence[str]
) -> EligibilityInquiry:
    practice = coverage.patient.practice
    provider = ProviderFacts(practice.name, practice.npi, practice.taxonomy_code or "")
    try:
        return build_inquiry(
            coverage_facts(coverage),
            provider,
            trace_number=trace,
            trace_originator=f"1{practice.tax_id}",
            service_date=service_date,
            service_types=types,
            procedures=procedures,
        )
    except RequestError as exc:
        raise Unprocessable(str(exc)) from None


def _envelope(session: Session, route: ClearinghouseRoute, when: datetime) -> Envelope:
    control = allocate(session, route.id, ControlNumberKind.INTERCHANGE)[0]
    return Envelope(
        sender_id=route.sender_id,
        receiver_id=route.receiver_id,
        application_sender=route.application_sender_code,
        application_receiver=route.application_receiver_code,
        control_number=control,
        sender_qualifier=route.sender_id_qualifier,
        receiver_qualifier=route.receiver_id_qualifier,
        usage=route.usage_indicator.value,
        when=when,
    )


def _store_file(
    session: Session,
    content: bytes,
    *,
    direction: FileDirection,
    kind: EdiFileKind,
    route_id: int | None,
    name: str,
) -> EdiFile:
    digest = hashlib.sha256(content).hexdigest()
    existing = session.scalar(select(EdiFile).where(EdiFile.direction == direction, EdiFile.sha256 == digest))
    if existing is not None:
        return existing
    row = EdiFile(
        direction=direction,
        kind=kind,
        sha256=digest,
        size_bytes=len(content),
        stored_name=name,
        status=EdiFileStatus.RECEIVED,  # outbound: until sent; inbound: until recorded
        route_id=route_id,
        content=content,
    )
    session.add(row)
    session.flush()
    return row


def start_check(
    session: Session,
    coverage: Coverage,
    *,
    service_date: date,
    service_types: Sequence[str] = (),
    procedures: Sequence[str] = (),
    user_id: int | None = None,
    store_request: bool = True,
) -> EligibilityCheck:
    """A new check (pending) with its 270 stored; audited. ``store_request=False`` leaves the
    270 to the batch, which puts many checks in one interchange."""
    route = route_of(coverage)
    trace = uuid.uuid4().hex[:20].upper()
    inquiry = _inquiry(coverage, trace, service_date, service_types, procedures)
    check = EligibilityCheck(
        coverage_id=coverage.id,
        requested_by_user_id=user_id,
        trace_number=trace,
        service_type_codes=list(inquiry.service_types),
        status=EligibilityStatus.PENDING,
    )
    session.add(check)
    session.flush()
    if store_request:
        when = utcnow().replace(tzinfo=None)
        text = generate_270([inquiry], _envelope(session, route, when))
        request = _store_file(
            session,
            text.encode("ascii"),
            direction=FileDirection.OUTBOUND,
            kind=EdiFileKind.ELIGIBILITY_270,
            route_id=route.id,
            name=f"270-{check.public_id}.x12",
        )
        check.request_file_id = request.id
    audit(
        session,
        action=AuditAction.CREATE,
        event_type="eligibility.request",
        entity_type="eligibility_check",
        entity_id=check.public_id,
        patient_id=coverage.patient_id,
        details={"service_types": list(inquiry.service_types), "procedures": len(procedures)},
    )
    return check


# -- recording what came back -----------------------------------------------------------------


def _request_facts(session: Session, check: EligibilityCheck) -> tuple[date | None, str]:
    """(date of service, member id sent) from the stored 270 (kept encrypted; read through the ORM)."""
    request = session.get(EdiFile, check.request_file_id) if check.request_file_id is not None else None
    if request is not None and request.content is not None:
        for inquiry in parse_270(bytes(request.content)).inquiries:
            if inquiry.trace_number == check.trace_number:
                return inquiry.service_date, inquiry.subscriber.member_id
    return None, check.coverage.member_id


def _error_json(kind: str, message: str, retry: RetryPlan | None, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "message": message, "retry": retry.to_json_dict() if retry else None, **extra}


def _attempts(check: EligibilityCheck) -> int:
    return int((check.error or {}).get("attempt", 0))


def record_failure(session: Session, check: EligibilityCheck, failure: TransportFailure) -> None:
    """A timeout or transport failure: stored with its retry plan (1, 5, 15, 60 minutes)."""
    attempt = _attempts(check) + 1
    plan = timeout_plan(attempt)
    check.status = EligibilityStatus.TIMEOUT if failure.kind == "timeout" else EligibilityStatus.ERROR
    check.responded_at = utcnow()
    check.benefits_summary = None
    check.error = _error_json(
        failure.kind, failure.message, plan, attempt=attempt, http_status=failure.status
    )
    _audit_result(session, check, outcome=failure.kind)


def _audit_result(session: Session, check: EligibilityCheck, *, outcome: str) -> None:
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type="eligibility.result",
        entity_type="eligibility_check",
        entity_id=check.public_id,
        patient_id=check.coverage.patient_id,
        details={"status": check.status.value, "outcome": outcome},
    )


def record_answer(
    session: Session,
    check: EligibilityCheck,
    content: bytes,
    *,
    route_id: int | None,
    control_number: int = 1,
    kind: EdiFileKind = EdiFileKind.ELIGIBILITY_271,
) -> BenefitsSummary:
    """Store the payer's answer (a 271, or ``kind`` ACK_999 for a 999 about our 270) and the result."""
    answer_file = _store_file(
        session,
        content,
        direction=FileDirection.INBOUND,
        kind=kind,
        route_id=route_id,
        name=f"271-{check.public_id}-{hashlib.sha256(content).hexdigest()[:8]}.x12",
    )
    check.response_file_id = answer_file.id
    check.responded_at = utcnow()
    service_date, member_id = _request_facts(session, check)
    answer = read_271(
        content,
        trace_number=check.trace_number,
        service_types=check.service_type_codes or ["30"],
        service_date=service_date,
        member_id_sent=member_id,
    )
    summary = answer.summary
    if answer.malformed:
        findings = [f.to_json_dict() for f in answer.report.errors[:20]]
        answer_file.status = EdiFileStatus.FAILED
        answer_file.error_summary = {"error": "invalid", "findings": findings}
        ack_kind = None
        if answer.report.interchanges:
            ack = acknowledge(answer.report, control_number=control_number)
            ack_kind = ack.kind
            _store_file(
                session,
                ack.text.encode("ascii"),
                direction=FileDirection.OUTBOUND,
                kind=EdiFileKind.ACK_999 if ack.kind == "999" else EdiFileKind.TA1,
                route_id=route_id,
                name=f"{ack.kind}-{check.public_id}.x12",
            )
        check.status = EligibilityStatus.ERROR
        check.benefits_summary = summary.to_json_dict()
        check.error = _error_json(
            "malformed_271",
            "the payer's 271 fails the X279A1 guide",
            summary.retry or malformed_plan(),
            findings=findings,
            acknowledgment=ack_kind,
        )
    else:
        answer_file.status = EdiFileStatus.PROCESSED
        check.status = _STATUS[summary.status]
        check.benefits_summary = summary.to_json_dict()
        if summary.status in ("active", "inactive"):
            check.error = None
        else:
            check.error = _error_json(
                summary.status,
                "; ".join(r.reason_text for r in summary.rejections)
                or "; ".join(summary.messages)
                or summary.status,
                summary.retry,
                rejections=[r.to_json_dict() for r in summary.rejections],
            )
    answer_file.processed_at = utcnow()
    _audit_result(session, check, outcome=summary.status)
    return summary


# -- real time ---------------------------------------------------------------------------------


def _mark_sent(session: Session, check: EligibilityCheck) -> None:
    """The check's 270 file reached the payer (uploaded, or answered in real time)."""
    request = session.get(EdiFile, check.request_file_id) if check.request_file_id else None
    if request is not None and request.status is EdiFileStatus.RECEIVED:
        request.status = EdiFileStatus.PROCESSED
        request.processed_at = utcnow()


def realtime_client(route: ClearinghouseRoute) -> RealTimeClient:
    """The CORE client for a route: ``eligibility_url`` (+ ``eligibility_timeout_seconds``) in its settings."""
    settings = route.settings or {}
    url = settings.get("eligibility_url")
    if not url:
        raise EligibilityUnavailable(f"route {route.name} has no eligibility_url for real-time checks")
    timeout = float(settings.get("eligibility_timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    return RealTimeClient(str(url), sender_id=route.sender_id, receiver_id=route.receiver_id, timeout=timeout)


def run_realtime(
    factory: sessionmaker[Session], check_id: int, *, client_factory: ClientFactory = realtime_client
) -> EligibilityStatus:
    """Send the check's stored 270 now and record whatever happens (three short transactions)."""
    with unit_of_work(factory) as session:
        check = session.get(EligibilityCheck, check_id)
        if check is None:
            raise NotFound("no eligibility check with this id")
        route = route_of(check.coverage)
        request = session.get(EdiFile, check.request_file_id) if check.request_file_id else None
        if request is None or request.content is None:
            raise Unprocessable("the check has no stored 270 to send")
        payload = bytes(request.content).decode("ascii")
        client = client_factory(route)
        route_id = route.id
        check.status = EligibilityStatus.SENT
    try:
        result = client.exchange(payload)
    except TransportFailure as failure:
        with unit_of_work(factory) as session:
            check = session.get(EligibilityCheck, check_id)
            record_failure(session, check, failure)
            return check.status
    with unit_of_work(factory) as session:
        check = session.get(EligibilityCheck, check_id)
        _mark_sent(session, check)
        control = allocate(session, route_id, ControlNumberKind.INTERCHANGE)[0]
        kind = EdiFileKind.ACK_999 if result.is_999 else EdiFileKind.ELIGIBILITY_271
        content = result.response.payload.encode("utf-8")
        record_answer(session, check, content, route_id=route_id, control_number=control, kind=kind)
        if result.is_999:
            check.status = EligibilityStatus.ERROR
            check.error = _error_json(
                "request_rejected",
                "the payer rejected our 270 with a 999",
                RetryPlan(False, None, "fix the 270", True),
            )
        return check.status


# -- batch over the clearinghouse link ------------------------------------------------------------


def start_batch(session: Session, wanted: Sequence[tuple[Coverage, date]]) -> list[int]:
    """Pending checks for (coverage, date of service) pairs, with one 270 interchange per
    route stored for them (one transaction set per check); the check ids."""
    by_route: dict[int, list[tuple[EligibilityCheck, EligibilityInquiry]]] = {}
    routes: dict[int, ClearinghouseRoute] = {}
    for coverage, day in wanted:
        route = route_of(coverage)
        check = start_check(session, coverage, service_date=day, store_request=False)
        inquiry = _inquiry(coverage, check.trace_number or "", day, check.service_type_codes or [], [])
        by_route.setdefault(route.id, []).append((check, inquiry))
        routes[route.id] = route
    when = utcnow().replace(tzinfo=None)
    ids: list[int] = []
    for route_id, pairs in by_route.items():
        route = routes[route_id]
        envelope = _envelope(session, route, when)
        content = generate_270([inquiry for _, inquiry in pairs], envelope).encode("ascii")
        request = _store_file(
            session,
            content,
            direction=FileDirection.OUTBOUND,
            kind=EdiFileKind.ELIGIBILITY_270,
            route_id=route.id,
            name=f"270-{route.sender_id.strip()}-{envelope.control_number:09d}.x12",
        )
        for check, _ in pairs:
            check.request_file_id = request.id
            ids.append(check.id)
    return ids


def upload_batch(
    factory: sessionmaker[Session], check_ids: Sequence[int], *, transport_factory: TransportFactory
) -> list[str]:
    """Upload the stored 270 files of pending checks (confirmed by read-back); checks ``sent``.

    A failed upload leaves its checks ``error`` with a retry plan; the names uploaded are returned.
    """
    with unit_of_work(factory) as session:
        files: dict[int, list[int]] = {}
        for check_id in check_ids:
            check = session.get(EligibilityCheck, check_id)
            if check is not None and check.status is EligibilityStatus.PENDING and check.request_file_id:
                files.setdefault(check.request_file_id, []).append(check.id)
        jobs = []
        for file_id, ids in files.items():
            row = session.get(EdiFile, file_id)
            route = session.get(ClearinghouseRoute, row.route_id)
            session.expunge(route)
            jobs.append((route, row.stored_name, bytes(row.content or b""), ids))
    uploaded: list[str] = []
    for route, name, content, ids in jobs:
        try:
            transport = transport_factory(route)
            try:
                transport.upload(name, content)
            finally:
                transport.close()
        except TransportError as exc:
            with unit_of_work(factory) as session:
                for check_id in ids:
                    failure = TransportFailure("connection", str(exc)[:200])
                    record_failure(session, session.get(EligibilityCheck, check_id), failure)
            continue
        with unit_of_work(factory) as session:
            for check_id in ids:
                check = session.get(EligibilityCheck, check_id)
                check.status = EligibilityStatus.SENT
                _mark_sent(session, check)
        uploaded.append(name)
    return uploaded


def process_271(session: Session, edi_file: EdiFile, content: bytes) -> dict[str, Any]:
    """An inbound 271 file: each response goes to the check whose trace number it echoes.

    Same signature as the clearinghouse's inbound handlers, so its ``process_file``
    dispatch can route ``EdiFileKind.ELIGIBILITY_271`` here.
    """
    doc = parse_271(content, file=edi_file.stored_name)
    traces = {t.number for r in doc.responses for m in r.members() for t in m.traces if t.number}
    matched = 0
    for trace in sorted(traces):
        check = session.scalar(select(EligibilityCheck).where(EligibilityCheck.trace_number == trace))
        if check is None:
            continue
        record_answer(session, check, content, route_id=edi_file.route_id)
        matched += 1
    edi_file.status = EdiFileStatus.PROCESSED
    edi_file.processed_at = utcnow()
    return {"responses": len(doc.responses), "matched_checks": matched, "unmatched": len(traces) - matched}


def poll_answers(
    factory: sessionmaker[Session], route_id: int, *, transport_factory: TransportFactory
) -> dict[str, Any]:
    """Fetch the 271s waiting in the route's inbox, record them, remove them there."""
    from claims_server.clearinghouse.services import sniff

    with unit_of_work(factory) as session:
        route = session.get(ClearinghouseRoute, route_id)
        if route is None:
            raise NotFound("no clearinghouse route with this id")
        session.expunge(route)
    transport = transport_factory(route)
    summary = {"files": 0, "matched_checks": 0}
    try:
        for name in transport.list_inbox():
            content = transport.fetch(name)
            if sniff(content)[0] is not EdiFileKind.ELIGIBILITY_271:
                continue
            with unit_of_work(factory) as session:
                row = _store_file(
                    session,
                    content,
                    direction=FileDirection.INBOUND,
                    kind=EdiFileKind.ELIGIBILITY_271,
                    route_id=route_id,
                    name=f"in-{hashlib.sha256(content).hexdigest()[:16]}.x12",
                )
                if row.status is EdiFileStatus.RECEIVED:
                    outcome = process_271(session, row, content)
                    summary["matched_checks"] += outcome["matched_checks"]
            summary["files"] += 1
            transport.remove(name)
    finally:
        transport.close()
    return summary


# -- tomorrow's patients ------------------------------------------------------------------------


def coverages_to_check(session: Session, day: date) -> list[tuple[int, date]]:
    """(coverage id, date of service) for each patient with an encounter on ``day`` whose
    primary coverage is in force then, its payer takes 270s, and no check ran recently."""
    since = utcnow() - RECHECK_AFTER
    found: list[tuple[int, date]] = []
    encounters = session.scalars(
        select(Encounter).where(Encounter.date_of_service == day).order_by(Encounter.id)
    )
    for encounter in encounters:
        coverage = next(
            (
                c
                for c in sorted(encounter.patient.coverages, key=lambda c: c.coverage_order)
                if c.is_effective_on(day)
            ),
            None,
        )
        if coverage is None or not coverage.payer.supports_eligibility or coverage.payer.route is None:
            continue
        recent = session.scalar(
            select(EligibilityCheck.id).where(
                EligibilityCheck.coverage_id == coverage.id, EligibilityCheck.requested_at >= since
            )
        )
        if recent is None and (coverage.id, day) not in found:
            found.append((coverage.id, day))
    return found


def queue_tomorrow(session: Session, today: date) -> list[int]:
    """Pending batch checks (270s stored) for each of tomorrow's scheduled patients; their ids."""
    tomorrow = today + timedelta(days=1)
    wanted = [
        (session.get(Coverage, coverage_id), day)
        for coverage_id, day in coverages_to_check(session, tomorrow)
    ]
    return start_batch(session, wanted)


# -- reading -------------------------------------------------------------------------------------


def get_check(session: Session, public_id: str, principal: Principal) -> EligibilityCheck:
    stmt = scope_query(
        select(EligibilityCheck)
        .join(Coverage, Coverage.id == EligibilityCheck.coverage_id)
        .where(EligibilityCheck.public_id == public_id),
        principal,
        EligibilityCheck,
    )
    check = session.scalar(stmt)
    if check is None:
        raise NotFound("no eligibility check with this id")
    return check


def check_json(check: EligibilityCheck) -> dict[str, Any]:
    """The API form: status, retry plan, summary; names and member ids are never included."""
    return {
        "id": check.public_id,
        "coverage": check.coverage.public_id,
        "patient": check.coverage.patient.public_id,
        "status": check.status.value,
        "requested_at": check.requested_at.isoformat() if check.requested_at else None,
        "responded_at": check.responded_at.isoformat() if check.responded_at else None,
        "service_types": list(check.service_type_codes or []),
        "trace_number": check.trace_number,
        "summary": check.benefits_summary,
        "error": check.error
        if check.status not in (EligibilityStatus.PENDING, EligibilityStatus.SENT)
        else None,
    }


def audit_read(session: Session, check: EligibilityCheck, what: str) -> None:
    audit(
        session,
        action=AuditAction.READ,
        event_type=f"eligibility.{what}",
        entity_type="eligibility_check",
        entity_id=check.public_id,
        patient_id=check.coverage.patient_id,
        details={"status": check.status.value},
    )


def last_check(session: Session, coverage_id: int) -> EligibilityCheck | None:
    """The newest check of a coverage that got an answer (active, inactive or error)."""
    return last_checks(session, [coverage_id]).get(coverage_id)


def last_checks(session: Session, coverage_ids: Iterable[int]) -> dict[int, EligibilityCheck]:
    """coverage id -> its newest answered check, for many coverages in one query."""
    ids = sorted(set(coverage_ids))
    if not ids:
        return {}
    ranked = (
        select(
            EligibilityCheck.id,
            func.row_number()
            .over(
                partition_by=EligibilityCheck.coverage_id,
                order_by=(EligibilityCheck.requested_at.desc(), EligibilityCheck.id.desc()),
            )
            .label("rank"),
        )
        .where(EligibilityCheck.coverage_id.in_(ids), EligibilityCheck.benefits_summary.is_not(None))
        .subquery()
    )
    checks = session.scalars(
        select(EligibilityCheck).join(ranked, ranked.c.id == EligibilityCheck.id).where(ranked.c.rank == 1)
    )
    return {check.coverage_id: check for check in checks}


def _member_ids(content: bytes) -> dict[str, str]:
    """TRN02 trace number -> the subscriber's member id (NM109), for every answer in a stored 271."""
    found: dict[str, str] = {}
    for response in parse_271(content).responses:
        for member in response.subscribers:
            for person in (member, *member.dependents):
                for trace in person.traces:
                    found[trace.number] = member.person.identifier
    return found


def eligibility_facts(session: Session, coverage: Coverage) -> EligibilityFacts | None:
    """The scrubber's view of the coverage's last answered check (None: never checked)."""
    return eligibility_facts_for(session, [coverage]).get(coverage.id)


def eligibility_facts_for(
    session: Session, coverages: Iterable[Coverage], *, member_ids: dict[int, dict[str, str]] | None = None
) -> dict[int, EligibilityFacts]:
    """coverage id -> the scrubber's view of its last answered check (absent: never checked).

    The same facts for one claim (``scrub_claim``, ``ready``) or thousands (batching): one
    query for the checks, one for the 271 files not yet read. The payer's member id comes
    from the stored 271 (encrypted at rest), not from the summary JSON, which holds no
    PHI; ``member_ids`` (file id -> trace -> member id) keeps each file parsed once across
    calls, since one batch 271 answers many coverages.
    """
    by_id = {coverage.id: coverage for coverage in coverages}
    checks = last_checks(session, by_id)
    cache = member_ids if member_ids is not None else {}
    wanted = {c.response_file_id for c in checks.values() if c.response_file_id is not None} - cache.keys()
    if wanted:
        for answer in session.scalars(select(EdiFile).where(EdiFile.id.in_(sorted(wanted)))):
            readable = answer.content is not None and answer.status is EdiFileStatus.PROCESSED
            cache[answer.id] = _member_ids(bytes(answer.content)) if readable else {}
    facts: dict[int, EligibilityFacts] = {}
    for coverage_id, check in checks.items():
        answered = cache.get(check.response_file_id, {}) if check.response_file_id is not None else {}
        facts[coverage_id] = scrub_facts(
            from_json(check.benefits_summary),
            payer_id=by_id[coverage_id].payer.payer_id,
            checked_on=check.responded_at.date() if check.responded_at else None,
            member_id=answered.get(check.trace_number, "") if check.trace_number else "",
        )
    return facts


def patient_of(session: Session, coverage_public_id: str, principal: Principal) -> Coverage:
    """The coverage by public id, if the caller may see it."""
    stmt = scope_query(select(Coverage).where(Coverage.public_id == coverage_public_id), principal, Coverage)
    coverage = session.scalar(stmt)
    if coverage is None:
        raise NotFound("no coverage with this id")
    return coverage


__all__ = [
    "EligibilityUnavailable",
    "check_json",
    "eligibility_facts",
    "eligibility_facts_for",
    "get_check",
    "poll_answers",
    "process_271",
    "queue_tomorrow",
    "record_answer",
    "record_failure",
    "route_of",
    "route_transport",
    "run_realtime",
    "start_batch",
    "start_check",
    "upload_batch",
]
