"""Batching: ready claims grouped per clearinghouse route into validated 837 interchanges.

``build_batches(session)`` takes every ``ready`` claim whose payer has a route (or only
the ready ones of ``claim_ids``; ``submission.sending`` is the door that sends them), and per
(route, practice, claim kind) in chunks of at most 5,000 claims (the TR3 limit per
ST/SE; one transaction set per interchange, so a 999 verdict on an ST is a verdict on
exactly one stored file):

1. converts each claim with ``build_cob_edi_claim`` (``build_edi_claim``, the conversion
   the scrubber uses, plus one 2320/2330/2430 loop per prior payer's adjudication for a
   secondary or tertiary claim; nothing more for a primary one) and scrubs it with the
   payer's rules and its coverage's last eligibility answer (``eligibility_facts_for``:
   the rules ``scrub_claim`` and ``ready`` apply, loaded per chunk); a claim with errors
   is *held*. A claim to a second or third payer with no prior adjudication linked has
   no 2320 loop, so the 837 check (``X12.PRIMARY_PAYER``: exactly one payer with
   responsibility P) holds it;
2. allocates ISA13/GS06/ST02 (``control_numbers.allocate``), writes the 837 with
   ``edi.x837.write_837`` and validates the text with ``edi.validate`` (TR3 map,
   envelope and the 837 guide rules). Findings inside a claim hold that claim and the
   file is written again without it (same control numbers: nothing has left yet);
3. stores ``SubmissionBatch`` (built), ``Interchange``, ``EdiFile`` (the bytes and
   their SHA-256) and ``BatchClaim`` rows and moves each claim ``ready → batched``.

The work per interchange is a fixed number of statements, not a few per claim: claims
are loaded :data:`LOAD_CHUNK` at a time with their relations (``claim_load_options``),
the ``BatchClaim`` rows go in one INSERT, and ``state.mark_batched_many`` moves the
claims with one guarded UPDATE per 1,000 and appends their audit events with one
executemany INSERT (``security.audit.audit_events_bulk``).

A held claim goes ``ready → draft`` with its findings in ``claim.scrub_findings``: it
needs correcting, and leaving it ready would make every later batch trip on it again.
Nothing here commits; the caller's unit of work saves the whole batch or nothing.

On PostgreSQL the ready claims are taken with ``FOR NO KEY UPDATE SKIP LOCKED``: two
batchers never take the same claim, and the ``FOR KEY SHARE`` locks that rows referring to
a claim take (a dry run's ``BatchClaim`` rows) do not make a batcher skip it. A dry run
(``dry_run=True``, rolled back by the caller) locks no claim: no ``FOR UPDATE``, no claim
row updated (held and batched claims are reported, not moved), so a real send at the same
moment batches every ready claim.
"""

from __future__ import annotations

import gc
import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, func, insert, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from claims_server.claims import state
from claims_server.claims.scrub import payer_rules, scrubber, to_json_findings
from claims_server.claims.to_edi import ClaimDataError, batch_for, build_billing_provider, claim_load_options
from claims_server.eligibility.services import eligibility_facts_for
from claims_server.errors import Unprocessable
from claims_server.models import (
    BatchClaim,
    Claim,
    ClaimKind,
    ClaimState,
    ClearinghouseRoute,
    Coverage,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    FileDirection,
    Interchange,
    Payer,
    Practice,
    SubmissionBatch,
)
from claims_server.models.common import utcnow
from claims_server.models.submissions import BatchState, ControlNumberKind, TransactionKind
from claims_server.secondary.services import build_cob_edi_claim, preload_prior_payments
from claims_server.submission.control_numbers import allocate
from coding.scrubber import PayerRules
from edi import claims as edi
from edi.findings import Finding, Severity
from edi.validate import TransactionSetReport, validate
from edi.writer import X12WriteError
from edi.x837 import MAX_CLAIMS_PER_TRANSACTION, write_837

__all__ = ["BatchingResult", "HeldClaim", "build_batches", "outbound_file_name"]

MAX_CLAIMS_PER_HL = 100  # TR3: loop 2300 repeats at most 100 times per 2000B/2000C
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9]")
# 837 loops that sit inside one claim (2300 claim, 2310x/2320/2330x, 2400 lines and below).
_CLAIM_LOOPS = ("23", "24")
# Loops between the billing provider and the claim (2000B/2010Bx subscriber and payer,
# 2000C/2010CA patient): a finding there concerns the claims that follow it.
_PARTY_LOOPS = ("2000B", "2010B", "2000C", "2010C")


@dataclass
class HeldClaim:
    """A ready claim kept out of the batch, with the findings that kept it out (no values: PHI)."""

    claim_id: int
    public_id: str
    patient_control_number: str
    route_id: int | None
    findings: list[dict[str, Any]]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "claim": self.public_id,
            "patient_control_number": self.patient_control_number,
            "findings": self.findings,
        }


@dataclass
class BatchingResult:
    """What one batching run did."""

    batch_ids: list[int] = field(default_factory=list)
    claims_batched: int = 0
    held: list[HeldClaim] = field(default_factory=list)
    unrouted_claims: int = 0  # ready claims whose payer has no active route (left ready)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "batches": len(self.batch_ids),
            "claims_batched": self.claims_batched,
            "held": [h.to_json_dict() for h in self.held],
            "unrouted_claims": self.unrouted_claims,
        }


def outbound_file_name(kind: TransactionKind, sender_id: str, isa13: int) -> str:
    """The file name an interchange is uploaded under: stable, so a retried upload replaces itself."""
    sender = _UNSAFE_NAME.sub("", sender_id) or "SENDER"
    return f"{kind.value}-{sender}-{isa13:09d}.x12"


#: What to do about a claim the 837 writer refuses (its X12WriteError code).
_WRITE_HINTS = {
    "DELIMITER_IN_DATA": "Remove X12 delimiter characters (* ~ : ^) and line breaks from the claim's data.",
    "EMPTY_SEGMENT": "A required name or value has no letter the X12 character set can carry; "
    "enter it in Latin letters.",
}


def _x12_finding(f: Finding) -> dict[str, Any]:
    """A validator finding as stored with a held claim: X12 coordinates and rule, never the value."""
    where = f.segment or "file"
    if f.element:
        where = f.element
    return {
        "rule_id": f.code,
        "severity": f.severity.value,
        "message": f.message,
        "path": where,
        "loop": f.loop,
        "hint": "Correct the claim data the 837 check names, then mark the claim ready again.",
        "source": "837",
    }


#: Claims loaded (with every relation the 837 needs) per query while batching.
LOAD_CHUNK = 1000


def _select_ready(
    session: Session,
    route_id: int | None,
    limit: int | None,
    claim_ids: Sequence[int] | None = None,
    *,
    lock: bool = True,
) -> Iterator[list[Claim]]:
    """The ready claims (all, or the ready ones of ``claim_ids``), :data:`LOAD_CHUNK` at a time.

    The ids are taken (and, on PostgreSQL with ``lock``, locked) by one query, or one per
    :data:`LOAD_CHUNK` given ids; each chunk is then one claim query plus one per relation
    (``claim_load_options``), so the number of queries grows with the chunks, not the
    claims, and no chunk's IN list is unbounded.
    """
    stmt = (
        select(Claim.id)
        .join(Coverage, Claim.coverage_id == Coverage.id)
        .join(Payer, Coverage.payer_id == Payer.id)
        .where(Claim.state == ClaimState.READY)
        .order_by(Claim.id)
    )
    if route_id is not None:
        stmt = stmt.where(Payer.route_id == route_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        # Two batchers never take the same claim: the second skips rows the first holds. NO KEY
        # UPDATE (all a batcher changes): a dry run's BatchClaim rows (KEY SHARE) do not block it.
        stmt = stmt.with_for_update(of=Claim, skip_locked=True, key_share=True)
    if claim_ids is None:
        ids = list(session.scalars(stmt if limit is None else stmt.limit(limit)))
    else:
        wanted = sorted(set(claim_ids))
        ids = []
        for start in range(0, len(wanted), LOAD_CHUNK):
            ids += session.scalars(
                stmt.where(state.id_in(session, Claim.id, wanted[start : start + LOAD_CHUNK]))
            )
        ids = ids if limit is None else ids[:limit]
    for start in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[start : start + LOAD_CHUNK]
        yield list(
            session.scalars(
                select(Claim)
                .where(state.id_in(session, Claim.id, chunk))
                .order_by(Claim.id)
                .options(*claim_load_options())
            )
        )


@dataclass
class _Candidate:
    claim: Claim
    edi_claim: edi.Claim


def _hold(
    session: Session,
    held: list[HeldClaim],
    claim: Claim,
    findings: list[dict[str, Any]],
    *,
    dry_run: bool = False,
) -> None:
    route = claim.coverage.payer.route_id if claim.coverage and claim.coverage.payer else None
    held.append(HeldClaim(claim.id, claim.public_id, claim.patient_control_number, route, findings))
    if dry_run:  # reported, not moved: a dry run updates no claim row (no lock)
        return
    claim.scrub_findings = findings
    claim.scrubbed_at = utcnow()
    state.return_to_draft(
        session,
        claim,
        reason="held back from the 837 batch: its data fails the checks",
        details={"rules": sorted({f["rule_id"] for f in findings if f["severity"] == "error"})[:20]},
    )


def _attribute(ts: TransactionSetReport, f: Finding) -> str | None:
    """CLM01 of the claim a finding concerns, or None when it concerns the whole file."""
    positions = sorted(ts.claim_refs)
    position = f.segment_position
    if position is None or not positions:
        return None
    loop = f.loop or ""
    if loop.startswith(_CLAIM_LOOPS):
        before = [p for p in positions if p <= position]
        return ts.claim_refs[before[-1]] if before else None
    if loop.startswith(_PARTY_LOOPS):
        after = [p for p in positions if p > position]
        return ts.claim_refs[after[0]] if after else None
    return None


def _write_and_check(
    route: ClearinghouseRoute,
    practice: Practice,
    kind: ClaimKind,
    candidates: list[_Candidate],
    controls: tuple[int, int, str],
    now: datetime,
    today: date,
) -> tuple[str, TransactionSetReport | None, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Write the 837 and validate it.

    Returns (text, transaction set report, findings per CLM01 to hold, findings about
    the whole file). An empty third and fourth element means the file is clean.
    """
    isa13, gs06, st02 = controls
    batch = batch_for(practice, route, [c.edi_claim for c in candidates], kind=kind, created=now)
    per_claim: dict[str, list[dict[str, Any]]] = {}
    try:
        text = write_837(
            batch,
            interchange_control=isa13,
            group_control=gs06,
            transaction_controls=[st02],
            usage=route.usage_indicator.value,
            when=now,
        )
    except X12WriteError as exc:
        # The writer names the segment and element, not the claim: find the claims that
        # cannot be written on their own.
        for c in candidates:
            try:
                write_837(
                    batch_for(practice, route, [c.edi_claim], kind=kind, created=now),
                    interchange_control=isa13,
                    group_control=gs06,
                    transaction_controls=[st02],
                    when=now,
                )
            except X12WriteError as single:
                per_claim[c.claim.patient_control_number] = [
                    {
                        "rule_id": f"X12.{single.code}",
                        "severity": "error",
                        "message": str(single),
                        "path": single.element or single.segment or "claim",
                        "loop": None,
                        "hint": _WRITE_HINTS.get(
                            single.code,
                            "Correct the claim data the 837 writer names, then mark the claim ready again.",
                        ),
                        "source": "837",
                    }
                ]
        if not per_claim:
            raise Unprocessable(f"the 837 cannot be written: {exc}") from exc
        return "", None, per_claim, []
    # The writer converts every value to the X12 character set (edi.charset), so the text
    # is ASCII; were it not, the validator would name the element (IK4 6) and hold the claim.
    report = validate(text.encode("utf-8"), file="outbound 837", rules=True, today=today)
    ts = report.transaction_sets[0] if report.transaction_sets else None
    whole_file: list[dict[str, Any]] = []
    for f in report.findings:
        if f.severity is not Severity.ERROR:
            continue
        pcn = _attribute(ts, f) if ts is not None else None
        if pcn is None:
            whole_file.append(_x12_finding(f))
        else:
            per_claim.setdefault(pcn, []).append(_x12_finding(f))
    return text, ts, per_claim, whole_file


def _build_one(
    session: Session,
    route: ClearinghouseRoute,
    practice: Practice,
    kind: ClaimKind,
    candidates: list[_Candidate],
    result: BatchingResult,
    now: datetime,
    today: date,
    *,
    dry_run: bool = False,
) -> SubmissionBatch | None:
    """One interchange from ``candidates`` (all clean by the scrubber), holding what the 837 checks refuse."""
    isa13 = allocate(session, route.id, ControlNumberKind.INTERCHANGE)[0]
    gs06 = allocate(session, route.id, ControlNumberKind.GROUP)[0]
    st02 = f"{allocate(session, route.id, ControlNumberKind.TRANSACTION_SET)[0]:04d}"
    remaining = list(candidates)
    while remaining:
        text, ts, per_claim, whole_file = _write_and_check(
            route, practice, kind, remaining, (isa13, gs06, st02), now, today
        )
        if whole_file:
            # Not attributable to one claim: nothing of this interchange may leave.
            for c in remaining:
                _hold(session, result.held, c.claim, whole_file, dry_run=dry_run)
            return None
        if not per_claim:
            break
        kept = []
        for c in remaining:
            findings = per_claim.get(c.claim.patient_control_number)
            if findings:
                _hold(session, result.held, c.claim, findings, dry_run=dry_run)
            else:
                kept.append(c)
        remaining = kept
    if not remaining or ts is None:
        return None
    batch = _persist(session, route, kind, remaining, text, ts, (isa13, gs06, st02), now, dry_run=dry_run)
    result.claims_batched += len(remaining)
    return batch


def _persist(
    session: Session,
    route: ClearinghouseRoute,
    kind: ClaimKind,
    candidates: list[_Candidate],
    text: str,
    ts: TransactionSetReport,
    controls: tuple[int, int, str],
    now: datetime,
    *,
    dry_run: bool = False,
) -> SubmissionBatch:
    isa13, gs06, st02 = controls
    transaction_kind = (
        TransactionKind.PROFESSIONAL_837
        if kind is ClaimKind.PROFESSIONAL
        else TransactionKind.INSTITUTIONAL_837
    )
    content = text.encode("ascii")
    batch = SubmissionBatch(
        route_id=route.id, kind=transaction_kind, state=BatchState.BUILT, built_at=now, attempt_count=0
    )
    session.add(batch)
    session.flush()
    edi_file = EdiFile(
        direction=FileDirection.OUTBOUND,
        kind=EdiFileKind(transaction_kind.value),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        stored_name=outbound_file_name(transaction_kind, route.sender_id, isa13),
        status=EdiFileStatus.RECEIVED,  # outbound: stored, not yet uploaded
        sender_id=route.sender_id,
        interchange_control_number=f"{isa13:09d}",
        batch_id=batch.id,
        route_id=route.id,
        content=content,
    )
    session.add(edi_file)
    session.flush()
    session.add(
        Interchange(
            route_id=route.id,
            batch_id=batch.id,
            edi_file_id=edi_file.id,
            isa13=isa13,
            group_control_numbers=[gs06],
            transaction_control_numbers=[st02],
            created_at=now,
        )
    )
    # File order (the writer groups claims by billing provider and subscriber): CLM positions.
    order = {pcn: i for i, pcn in enumerate(ts.claim_refs[p] for p in sorted(ts.claim_refs))}
    by_order = sorted(candidates, key=lambda c: order.get(c.claim.patient_control_number, len(order)))
    # One INSERT for the BatchClaim rows and one bulk transition (a few UPDATEs and one
    # audit INSERT) for the claims, instead of three statements per claim.
    _insert_batch_claims(session, batch.id, [c.claim.id for c in by_order], st02)
    if not dry_run:  # a dry run's report reads the BatchClaim rows; its claims stay as they are
        details = {"batch": batch.public_id, "isa13": f"{isa13:09d}", "st02": st02}
        state.mark_batched_many(session, [c.claim for c in by_order], details=details)
    return batch


def _insert_batch_claims(session: Session, batch_id: int, claim_ids: list[int], st02: str) -> None:
    """The interchange's ``BatchClaim`` rows, positions 1..n in file order, in one statement.

    PostgreSQL gets one ``INSERT ... SELECT FROM unnest(ids, positions)``: two array
    parameters, however many claims (executemany would still send one Bind/Execute per
    row). Elsewhere one executemany INSERT.
    """
    positions = list(range(1, len(claim_ids) + 1))
    if session.get_bind().dialect.name == "postgresql":
        table = BatchClaim.__table__
        unnested = (
            func.unnest(literal(claim_ids, ARRAY(BigInteger)), literal(positions, ARRAY(Integer)))
            .table_valued("claim_id", "position")
            .render_derived(name="unnested")
        )
        rows = select(
            literal(batch_id, BigInteger), unnested.c.claim_id, unnested.c.position, literal(st02, String)
        )
        session.execute(
            table.insert().from_select(
                ["batch_id", "claim_id", "position", "transaction_control_number"], rows
            )
        )
        return
    session.execute(
        insert(BatchClaim),
        [
            {
                "batch_id": batch_id,
                "claim_id": claim_id,
                "position": position,
                "transaction_control_number": st02,
            }
            for claim_id, position in zip(claim_ids, positions, strict=True)
        ],
    )


def _chunks(items: Sequence[_Candidate], size: int) -> list[list[_Candidate]]:
    """Interchanges of at most ``size`` claims and at most 100 claims per subscriber HL.

    The 837 writer puts every claim of one (billing provider, subscriber, payer,
    patient) under one 2000B/2000C HL, and the TR3 allows the 2300 loop 100 times per
    HL: a 101st claim for the same person goes to the next interchange.
    """
    chunks: list[list[_Candidate]] = []
    counts: list[dict[int, int]] = []
    # Each distinct HL key (nested dataclasses, costly to hash) becomes a small int once.
    hl_numbers: dict[tuple[object, ...], int] = {}
    for item in items:
        c = item.edi_claim
        key = hl_numbers.setdefault((c.billing_provider, c.subscriber, c.payer, c.patient), len(hl_numbers))
        for chunk, count in zip(chunks, counts, strict=True):
            if len(chunk) < size and count.get(key, 0) < MAX_CLAIMS_PER_HL:
                break
        else:
            chunk, count = [], {}
            chunks.append(chunk)
            counts.append(count)
        chunk.append(item)
        count[key] = count.get(key, 0) + 1
    return chunks


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one batching run, then restore it.

    A run keeps every claim it loads (with its lines, diagnoses, dataclasses and file
    text) alive until it ends: tens of objects per claim, none of them garbage. Each
    full collection walks all of them; on 10,000 claims that was 9 full passes and
    about a quarter of the run's time. Reference counting still frees everything
    acyclic at once; cycles made during the run are collected after it. If the
    collector was already off (or another run paused it), it is left as found.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def build_batches(
    session: Session,
    *,
    route_id: int | None = None,
    claim_ids: Sequence[int] | None = None,
    limit: int | None = None,
    today: date | None = None,
    now: datetime | None = None,
    max_claims_per_interchange: int = MAX_CLAIMS_PER_TRANSACTION,
    dry_run: bool = False,
) -> BatchingResult:
    """Batch every ready claim (of one route, or all routes; or only the ready ones of
    ``claim_ids``, internal ids) into validated 837 interchanges. ``dry_run``: the same work
    without locking or moving any claim (see the module doc); the caller rolls back."""
    with _collector_paused():
        return _build_batches(
            session,
            route_id=route_id,
            claim_ids=claim_ids,
            limit=limit,
            today=today,
            now=now,
            max_claims_per_interchange=max_claims_per_interchange,
            dry_run=dry_run,
        )


def _build_batches(
    session: Session,
    *,
    route_id: int | None,
    claim_ids: Sequence[int] | None,
    limit: int | None,
    today: date | None,
    now: datetime | None,
    max_claims_per_interchange: int,
    dry_run: bool,
) -> BatchingResult:
    """:func:`build_batches` with the collector paused: load, convert and scrub, then one interchange per chunk."""
    now = now or utcnow()
    today = today or now.date()
    size = max(1, min(max_claims_per_interchange, MAX_CLAIMS_PER_TRANSACTION))
    result = BatchingResult()
    groups: dict[tuple[int, int, ClaimKind], list[_Candidate]] = {}
    routes: dict[int, ClearinghouseRoute] = {}
    practices: dict[int, Practice] = {}
    billing: dict[int, edi.BillingProvider] = {}
    rules: dict[int, PayerRules] = {}
    scrub = scrubber()
    member_ids: dict[int, dict[str, str]] = {}  # 271 files read so far (one answers many coverages)
    for chunk in _select_ready(session, route_id, limit, claim_ids, lock=not dry_run):
        # Secondary and tertiary claims: their prior adjudications in a few queries per chunk.
        payments = preload_prior_payments(session, chunk)
        # The last eligibility answer of each coverage, as ``scrub_claim`` and ``ready`` use it
        # (not active on the date of service, another payer primary, member id mismatch).
        eligibility = eligibility_facts_for(
            session, {claim.coverage for claim in chunk}, member_ids=member_ids
        )
        for claim in chunk:
            payer = claim.coverage.payer
            route = payer.route
            if route is None or not route.active:
                result.unrouted_claims += 1
                continue
            if claim.practice_id not in billing:
                billing[claim.practice_id] = build_billing_provider(claim.practice)
            try:
                edi_claim = build_cob_edi_claim(
                    session, claim, billing_provider=billing[claim.practice_id], payments=payments
                )
            except ClaimDataError as exc:
                _hold(session, result.held, claim, to_json_findings(exc.findings), dry_run=dry_run)
                continue
            if payer.id not in rules:
                rules[payer.id] = payer_rules(payer)
            findings = scrub.scrub(
                edi_claim, today=today, rules=rules[payer.id], eligibility=eligibility.get(claim.coverage_id)
            )
            if any(f.severity is Severity.ERROR for f in findings):
                _hold(session, result.held, claim, to_json_findings(findings), dry_run=dry_run)
                continue
            routes[route.id] = route
            practices[claim.practice_id] = claim.practice
            groups.setdefault((route.id, claim.practice_id, ClaimKind(claim.claim_kind)), []).append(
                _Candidate(claim, edi_claim)
            )
    for (rid, practice_id, kind), candidates in groups.items():
        for chunk in _chunks(candidates, size):
            try:
                batch = _build_one(
                    session,
                    routes[rid],
                    practices[practice_id],
                    kind,
                    chunk,
                    result,
                    now,
                    today,
                    dry_run=dry_run,
                )
            except Unprocessable as exc:
                # The practice cannot submit at all (e.g. no submitter contact, 1000A PER).
                finding = {
                    "rule_id": "SUBMITTER",
                    "severity": "error",
                    "message": exc.detail,
                    "path": "practice",
                    "loop": "1000A",
                    "hint": "Complete the practice's submitter data.",
                    "source": "practice",
                }
                already = {h.claim_id for h in result.held}  # a dry run leaves held claims ready
                for c in chunk:
                    if c.claim.state == ClaimState.READY and c.claim.id not in already:
                        _hold(session, result.held, c.claim, [finding], dry_run=dry_run)
                continue
            if batch is not None:
                result.batch_ids.append(batch.id)
    session.flush()
    return result
