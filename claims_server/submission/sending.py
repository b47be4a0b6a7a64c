"""Sending claims: batch the ready ones (all, or those chosen) and send each batch built.

``send_ready_claims`` is the one path every door takes (``POST /api/v1/batches``,
``claims-server batches send``, the workspace's Ready to send screen and the scheduled
``claims_server.submission.send_ready`` task):

1. one transaction builds the batches (``build_batches``: scrub, 837, control numbers,
   claims ``ready → batched``; a claim the checks refuse is held, back to draft with its
   findings) and commits them, so a batch exists before anything travels. A dry run
   does the same work and rolls it all back: the report says what would go out, and
   nothing changes (no batch, no control number, no claim state);
2. each batch is then sent: with tasks in-process (no broker, the embedded default) at
   once through ``clearinghouse.services.send_batch`` with the route's transport rooted
   at the instance folder; with a broker, as one ``claims_server.clearinghouse.send_batch``
   task per batch (ids only), which retries with backoff. A failed upload leaves the
   batch ``failed`` with the transport's message; ``resume_unsent_batches`` sends it again.
   The batches are committed by then, so no error of one batch escapes: a broker that
   refuses the task leaves the batch ``built`` (with why in ``last_error``), any other
   error of an upload leaves it ``failed`` (with the error's class only), both picked up
   by ``resume_unsent_batches``; the next batch is still tried, and the report says each
   batch's state and error (the API answers 201 with it, kept for the Idempotency-Key).

The report carries ids, counts and amounts only (no PHI): batches with their route and
totals per payer, held claims with their findings, chosen claims that were not ready, and
chosen ready claims that were not batched, with the reason (``NOT_BATCHED_REASONS``).
``batch_to_json`` is the read side: a batch with its totals, attempts and the EDI files
about it (its 837, the 999s and 277CAs received for it), from column queries only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from claims_server.api_common.fields import cents_to_money
from claims_server.api_common.pagination import Page, paginate
from claims_server.clearinghouse import services as clearinghouse
from claims_server.clearinghouse.history import ACK999_CODES, TA1_CODES, RawFile, read_raw_file
from claims_server.clearinghouse.transport import Transport, TransportConfigError, TransportError
from claims_server.db import unit_of_work
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import (
    Ack999Result,
    BatchClaim,
    Claim,
    ClaimState,
    ClaimStatusEvent,
    ClearinghouseRoute,
    Coverage,
    EdiFile,
    EdiFileKind,
    FileDirection,
    Interchange,
    Payer,
    ServiceLine,
    SubmissionBatch,
)
from claims_server.models.submissions import BatchState
from claims_server.submission.services import HeldClaim, build_batches
from claims_server.tasks.celery_app import celery_app, configure_celery
from edi.x277ca import category_outcome

__all__ = [
    "NOT_BATCHED_REASONS",
    "SEND_BATCH_TASK",
    "BatchSummary",
    "PayerTotal",
    "ReadyGroup",
    "ReadyOverview",
    "SendReport",
    "batch_files",
    "batch_to_json",
    "batches_to_json",
    "first_service_dates",
    "get_batch",
    "list_batches",
    "read_batch_file",
    "ready_claims",
    "ready_overview",
    "recent_batches",
    "route_id_of",
    "send_ready_claims",
]

#: The Celery task that uploads one batch (``claims_server.clearinghouse.tasks.send_batch``).
SEND_BATCH_TASK = "claims_server.clearinghouse.send_batch"
#: Claim ids resolved per query (keeps every IN list bounded).
_ID_CHUNK = 1000
#: The most held or not-ready claims a report lists (the counts cover all of them).
MAX_LISTED = 500
#: Why a chosen claim that was ready went in no batch (it is left as it was, still ready).
NOT_BATCHED_REASONS = {
    "other_route": "its payer is on another clearinghouse route than the one chosen",
    "no_route": "its payer has no active clearinghouse route",
    "in_use": "another send (or a change to the claim) had it at that moment; send it again",
}

log = logging.getLogger(__name__)

TransportFactory = Callable[[ClearinghouseRoute], Transport]


@dataclass
class PayerTotal:
    payer: str  # public id
    payer_name: str
    claims: int
    total_cents: int

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "payer": self.payer,
            "payer_name": self.payer_name,
            "claims": self.claims,
            "total": cents_to_money(self.total_cents),
        }


@dataclass
class BatchSummary:
    """One batch built (or, in a dry run, one that would be): route, claims and totals."""

    id: str | None  # public id; None in a dry run (nothing was kept)
    route: str
    route_name: str
    kind: str
    claims: int
    total_cents: int
    per_payer: list[PayerTotal]
    state: str
    last_error: str | None = None
    row_id: int | None = None  # internal id, for the sending step

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "route_name": self.route_name,
            "kind": self.kind,
            "claims": self.claims,
            "total_charge": cents_to_money(self.total_cents),
            "per_payer": [p.to_json_dict() for p in self.per_payer],
            "state": self.state,
            "last_error": self.last_error,
        }


@dataclass
class SendReport:
    """What one send did (or, with ``dry_run``, would do); ids, counts and amounts only."""

    dry_run: bool
    batches: list[BatchSummary] = field(default_factory=list)
    held: list[HeldClaim] = field(default_factory=list)
    not_ready: list[tuple[str, str]] = field(default_factory=list)  # (claim public id, state)
    #: Chosen claims that were ready but went in no batch: (claim public id, NOT_BATCHED_REASONS key).
    not_batched: list[tuple[str, str]] = field(default_factory=list)
    unrouted_claims: int = 0  # ready claims whose payer has no active route (left ready)

    @property
    def nothing_ready(self) -> bool:
        """No claim was (or would be) batched, and none was held for its findings."""
        return not self.batches and not self.held

    @property
    def claims_batched(self) -> int:
        return sum(b.claims for b in self.batches)

    @property
    def total_cents(self) -> int:
        return sum(b.total_cents for b in self.batches)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "nothing_ready": self.nothing_ready,
            "batches": [b.to_json_dict() for b in self.batches],
            "claims_batched": self.claims_batched,
            "total_charge": cents_to_money(self.total_cents),
            "held": [h.to_json_dict() for h in self.held[:MAX_LISTED]],
            "held_count": len(self.held),
            "not_ready": [{"claim": c, "state": s} for c, s in self.not_ready[:MAX_LISTED]],
            "not_ready_count": len(self.not_ready),
            "not_batched": [
                {"claim": c, "reason": r, "message": NOT_BATCHED_REASONS[r]}
                for c, r in self.not_batched[:MAX_LISTED]
            ],
            "not_batched_count": len(self.not_batched),
            "unrouted_claims": self.unrouted_claims,
        }


# -- choosing what to send ----------------------------------------------------------------------


def route_id_of(session: Session, public_id: str, *, field_name: str = "route") -> int:
    """The internal id of the route ``public_id``; 422 naming ``field_name`` when there is none."""
    route_id = session.scalar(select(ClearinghouseRoute.id).where(ClearinghouseRoute.public_id == public_id))
    if route_id is None:
        raise Unprocessable(
            "no clearinghouse route with that id",
            errors=[
                {"field": field_name, "rule": "exists", "message": "no clearinghouse route with this id"}
            ],
        )
    return route_id


def _resolve_claims(session: Session, public_ids: Sequence[str]) -> tuple[list[int], list[tuple[str, str]]]:
    """(ids of the chosen claims that are ready, (public id, state) of those that are not).

    An id of no claim is a 422 naming its position, before anything changes.
    """
    wanted = list(dict.fromkeys(public_ids))
    found: dict[str, tuple[int, ClaimState]] = {}
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start : start + _ID_CHUNK]
        for claim_id, public_id, claim_state in session.execute(
            select(Claim.id, Claim.public_id, Claim.state).where(Claim.public_id.in_(chunk))
        ):
            found[public_id] = (claim_id, claim_state)
    unknown = [i for i, public_id in enumerate(public_ids) if public_id not in found]
    if unknown:
        raise Unprocessable(
            f"{len(unknown)} of the chosen claims do not exist",
            errors=[
                {"field": f"claim_ids[{i}]", "rule": "exists", "message": "no claim with this id"}
                for i in unknown
            ],
        )
    ready = [found[p][0] for p in wanted if found[p][1] == ClaimState.READY]
    not_ready = [(p, found[p][1].value) for p in wanted if found[p][1] != ClaimState.READY]
    return ready, not_ready


def _summaries(session: Session, batch_ids: Sequence[int], *, dry_run: bool) -> list[BatchSummary]:
    """The batches' routes, claim counts and totals per payer (column queries, two in all)."""
    if not batch_ids:
        return []
    totals = _payer_totals(session, batch_ids)
    rows = session.execute(
        select(
            SubmissionBatch.id,
            SubmissionBatch.public_id,
            SubmissionBatch.kind,
            SubmissionBatch.state,
            SubmissionBatch.last_error,
            ClearinghouseRoute.public_id,
            ClearinghouseRoute.name,
        )
        .join(ClearinghouseRoute, ClearinghouseRoute.id == SubmissionBatch.route_id)
        .where(SubmissionBatch.id.in_(list(batch_ids)))
        .order_by(SubmissionBatch.id)
    )
    out = []
    for row_id, public_id, kind, batch_state, last_error, route, route_name in rows:
        per_payer = totals.get(row_id, [])
        out.append(
            BatchSummary(
                id=None if dry_run else public_id,
                route=route,
                route_name=route_name,
                kind=kind.value,
                claims=sum(p.claims for p in per_payer),
                total_cents=sum(p.total_cents for p in per_payer),
                per_payer=per_payer,
                state="dry_run" if dry_run else batch_state.value,
                last_error=None if dry_run else last_error,
                row_id=row_id,
            )
        )
    return out


def _payer_totals(session: Session, batch_ids: Sequence[int]) -> dict[int, list[PayerTotal]]:
    """Claims and charges per payer of each batch, payers by name."""
    out: dict[int, list[PayerTotal]] = {}
    for batch_id, payer, payer_name, claims, total in session.execute(
        select(
            BatchClaim.batch_id,
            Payer.public_id,
            Payer.name,
            func.count(Claim.id),
            func.coalesce(func.sum(Claim.total_charge_cents), 0),
        )
        .join(Claim, Claim.id == BatchClaim.claim_id)
        .join(Coverage, Coverage.id == Claim.coverage_id)
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(BatchClaim.batch_id.in_(list(batch_ids)))
        .group_by(BatchClaim.batch_id, Payer.public_id, Payer.name)
        .order_by(BatchClaim.batch_id, Payer.name)
    ):
        out.setdefault(batch_id, []).append(PayerTotal(payer, payer_name, int(claims), int(total)))
    return out


# -- sending --------------------------------------------------------------------------------------


def send_ready_claims(
    factory: sessionmaker[Session],
    *,
    claim_ids: Sequence[str] | None = None,
    route_id: int | None = None,
    dry_run: bool = False,
    today: date | None = None,
    transport_factory: TransportFactory | None = None,
) -> SendReport:
    """Batch the ready claims (all, or the ready ones of ``claim_ids``, public ids; of one route
    or all) and send each batch (see the module doc). ``transport_factory`` sends inline with
    that transport; without it, the process's task setting decides (in-process or queued)."""
    session = factory()
    try:
        ids: list[int] | None = None
        report = SendReport(dry_run=dry_run)
        if claim_ids is not None:
            ids, report.not_ready = _resolve_claims(session, claim_ids)
        if ids == []:
            session.rollback()
            return report
        result = build_batches(session, route_id=route_id, claim_ids=ids, today=today, dry_run=dry_run)
        report.held = result.held
        report.unrouted_claims = result.unrouted_claims
        report.batches = _summaries(session, result.batch_ids, dry_run=dry_run)
        if ids is not None:
            report.not_batched = _not_batched(session, ids, result.batch_ids, result.held, route_id)
        if dry_run:
            session.rollback()
            return report
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if report.batches:
        _send(factory, [b.row_id for b in report.batches if b.row_id is not None], transport_factory)
        with factory() as session:
            current = {
                row_id: (batch_state.value, last_error)
                for row_id, batch_state, last_error in session.execute(
                    select(SubmissionBatch.id, SubmissionBatch.state, SubmissionBatch.last_error).where(
                        SubmissionBatch.id.in_([b.row_id for b in report.batches])
                    )
                )
            }
        for batch in report.batches:
            batch.state, batch.last_error = current.get(batch.row_id, (batch.state, batch.last_error))
    return report


def _not_batched(
    session: Session,
    chosen_ready: Sequence[int],
    batch_ids: Sequence[int],
    held: Sequence[HeldClaim],
    route_id: int | None,
) -> list[tuple[str, str]]:
    """The chosen claims, ready when chosen, that went in no batch and were not held, each with
    its reason: a route other than ``route_id``, no active route, or taken by someone else at
    that moment (another batcher's lock, skipped on PostgreSQL; or changed meanwhile)."""
    batched: set[int] = set()
    if batch_ids:
        batched = set(
            session.scalars(select(BatchClaim.claim_id).where(BatchClaim.batch_id.in_(list(batch_ids))))
        )
    left = sorted(set(chosen_ready) - batched - {h.claim_id for h in held})
    out: list[tuple[str, str]] = []
    for start in range(0, len(left), _ID_CHUNK):
        chunk = left[start : start + _ID_CHUNK]
        for public_id, payer_route, active in session.execute(
            select(Claim.public_id, Payer.route_id, ClearinghouseRoute.active)
            .join(Coverage, Coverage.id == Claim.coverage_id)
            .join(Payer, Payer.id == Coverage.payer_id)
            .outerjoin(ClearinghouseRoute, ClearinghouseRoute.id == Payer.route_id)
            .where(Claim.id.in_(chunk))
            .order_by(Claim.id)
        ):
            if route_id is not None and payer_route != route_id:
                out.append((public_id, "other_route"))
            elif payer_route is None or not active:
                out.append((public_id, "no_route"))
            else:
                out.append((public_id, "in_use"))
    return out


def _configured_transport() -> TransportFactory | None:
    """The route transport rooted at the instance folder when tasks run in-process; None with a
    broker (the batches are queued). A route whose settings are unusable fails like an upload,
    so its batch is recorded ``failed`` with the reason instead of staying ``sending``."""
    settings = getattr(celery_app.conf, "claims_settings", None) or configure_celery().conf.claims_settings
    if not settings.tasks_eager:
        return None
    base = settings.INSTANCE_PATH

    def transport(route: ClearinghouseRoute) -> Transport:
        try:
            return clearinghouse.route_transport(route, base)
        except TransportConfigError as exc:
            raise TransportError(f"the route's transport settings are not usable: {exc}") from exc

    return transport


def _send(
    factory: sessionmaker[Session], batch_ids: list[int], transport_factory: TransportFactory | None
) -> None:
    """Upload (or queue) each batch; what goes wrong with one is recorded on it, never raised."""
    transport = transport_factory or _configured_transport()
    # A broker that refused one task refuses the next (and each try takes seconds of
    # reconnecting): the batches after it are recorded as not queued without trying.
    refused: Exception | None = None
    for batch_id in batch_ids:
        if refused is not None:
            _keep_for_resume(factory, batch_id, refused, queued=True)
            continue
        try:
            if transport is None:
                celery_app.send_task(SEND_BATCH_TASK, args=[batch_id])
            else:
                clearinghouse.send_batch(factory, batch_id, transport_factory=transport)
        except TransportError:
            # Recorded on the batch (failed, with the transport's message); sent again later by
            # resume_unsent_batches, or by ``claims-server clearinghouse send``.
            continue
        except Exception as exc:
            # The batch is committed: it is kept for resume_unsent_batches and reported, and the
            # next batch's upload is still tried. The log and the batch get the error's class
            # only (its message may quote data).
            log.error("a batch could not be sent", exc_info=exc, extra={"batch_id": batch_id})
            _keep_for_resume(factory, batch_id, exc, queued=transport is None)
            if transport is None:
                refused = exc


def _keep_for_resume(factory: sessionmaker[Session], batch_id: int, exc: Exception, *, queued: bool) -> None:
    """Say on the batch why it did not go: still ``built`` when the broker refused its task,
    ``failed`` when its upload broke; ``resume_unsent_batches`` sends both again."""
    reason = type(exc).__name__
    try:
        if queued:
            with unit_of_work(factory) as session:
                session.execute(
                    update(SubmissionBatch)
                    .where(SubmissionBatch.id == batch_id, SubmissionBatch.state == BatchState.BUILT)
                    .values(
                        last_error=f"could not be queued for upload ({reason}); "
                        "resume-unsent-batches queues it again"
                    )
                    .execution_options(synchronize_session=False)
                )
        else:
            clearinghouse.record_upload_failure(
                factory, batch_id, f"the upload failed ({reason}); resume-unsent-batches sends it again"
            )
    except Exception as again:  # the database itself away: the batch stays as it is, resumable
        log.error("could not record why a batch was not sent", exc_info=again, extra={"batch_id": batch_id})


# -- reading --------------------------------------------------------------------------------------


def get_batch(session: Session, public_id: str) -> SubmissionBatch:
    batch = session.scalar(select(SubmissionBatch).where(SubmissionBatch.public_id == public_id))
    if batch is None:
        raise NotFound("no submission batch with that id")
    return batch


def list_batches(
    session: Session,
    *,
    state: BatchState | None = None,
    route: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[SubmissionBatch]:
    """Batches newest first (filters: state, route public id), one keyset page."""
    filters = {"state": state.value if state else None, "route": route}
    return paginate(
        session,
        _batch_query(state, route),
        SubmissionBatch.id,
        limit=limit,
        cursor=cursor,
        filters=filters,
        descending=True,
    )


def recent_batches(
    session: Session, *, state: BatchState | None = None, route: str | None = None, limit: int = 50
) -> list[SubmissionBatch]:
    """The newest ``limit`` batches (filters as :func:`list_batches`), without a cursor."""
    query = _batch_query(state, route).order_by(SubmissionBatch.id.desc()).limit(limit)
    return list(session.scalars(query))


def _batch_query(state: BatchState | None, route: str | None) -> Select[tuple[SubmissionBatch]]:
    query = select(SubmissionBatch)
    if state is not None:
        query = query.where(SubmissionBatch.state == state)
    if route is not None:
        route_id = select(ClearinghouseRoute.id).where(ClearinghouseRoute.public_id == route)
        query = query.where(SubmissionBatch.route_id == route_id.scalar_subquery())
    return query


def batches_to_json(session: Session, batches: Sequence[SubmissionBatch]) -> list[dict[str, Any]]:
    """Batches as the list shows them: route, claims, totals per payer, state, attempts."""
    if not batches:
        return []
    totals = _payer_totals(session, [b.id for b in batches])
    routes = {
        route_id: (public_id, name)
        for route_id, public_id, name in session.execute(
            select(ClearinghouseRoute.id, ClearinghouseRoute.public_id, ClearinghouseRoute.name).where(
                ClearinghouseRoute.id.in_({b.route_id for b in batches})
            )
        )
    }
    return [_batch_json(b, totals.get(b.id, []), routes[b.route_id]) for b in batches]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _batch_json(
    batch: SubmissionBatch, per_payer: list[PayerTotal], route: tuple[str, str]
) -> dict[str, Any]:
    return {
        "id": batch.public_id,
        "route": route[0],
        "route_name": route[1],
        "kind": batch.kind.value,
        "state": batch.state.value,
        "claims": sum(p.claims for p in per_payer),
        "total_charge": cents_to_money(sum(p.total_cents for p in per_payer)),
        "per_payer": [p.to_json_dict() for p in per_payer],
        "attempts": batch.attempt_count or 0,
        "last_error": batch.last_error,
        "built_at": _iso(batch.built_at),
        "sent_at": _iso(batch.sent_at),
    }


def batch_to_json(
    session: Session, batch: SubmissionBatch, *, file_link: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """One batch: totals, state, attempts, its TA1 answer and its files (``file_link(public id)``
    gives each file's download address when the caller has one)."""
    out = batches_to_json(session, [batch])[0]
    interchange = session.execute(
        select(Interchange.ta1_status, Interchange.ta1_note_code).where(Interchange.batch_id == batch.id)
    ).first()
    ta1 = None
    if interchange is not None and interchange.ta1_status:
        ta1 = {
            "status": interchange.ta1_status,
            "meaning": TA1_CODES.get(interchange.ta1_status, interchange.ta1_status),
            "note_code": interchange.ta1_note_code,
        }
    files = batch_files(session, batch)
    for entry in files:
        entry["download"] = file_link(entry["id"]) if file_link is not None else None
    return {**out, "ta1": ta1, "files": files}


def read_batch_file(session: Session, batch: SubmissionBatch, file_id: str) -> RawFile:
    """One of the batch's files (``batch_files``: its 837, the 999s and 277CAs about it), decrypted,
    the download audited as the workspace's is (``read_raw_file``; the caller commits); 404 for
    a file that is not the batch's."""
    if file_id not in {entry["id"] for entry in batch_files(session, batch)}:
        raise NotFound("the batch has no file with that id")
    return read_raw_file(session, file_id)


_FILE_COLUMNS = (
    EdiFile.id,
    EdiFile.public_id,
    EdiFile.kind,
    EdiFile.direction,
    EdiFile.status,
    EdiFile.received_at,
    EdiFile.processed_at,
)


def batch_files(session: Session, batch: SubmissionBatch) -> list[dict[str, Any]]:
    """The batch's 837 (out) and the 999s and 277CAs received for it, oldest first; no content.

    A 999 names the batch (``Ack999Result.batch_id``). A 277CA answers claims, so it belongs
    to this batch when it carries a status of one of its claims and arrived after the batch
    was built and before the claim's next batch (a corrected claim sent again).
    """
    entries: dict[int, dict[str, Any]] = {}

    def add(row: Any, answer: str | None) -> None:
        entries[row.id] = {
            "id": row.public_id,
            "kind": row.kind.value,
            "direction": row.direction.value,
            "status": row.status.value,
            "received_at": _iso(row.received_at),
            "processed_at": _iso(row.processed_at),
            "answer": answer,
            "_order": (row.received_at, row.id),
        }

    for row in session.execute(
        select(*_FILE_COLUMNS).where(
            EdiFile.batch_id == batch.id,
            EdiFile.direction == FileDirection.OUTBOUND,
            EdiFile.kind.in_((EdiFileKind.CLAIM_837P, EdiFileKind.CLAIM_837I)),
        )
    ):
        add(row, None)
    for row in session.execute(
        select(*_FILE_COLUMNS, Ack999Result.acknowledgment_code)
        .join(Ack999Result, Ack999Result.edi_file_id == EdiFile.id)
        .where(Ack999Result.batch_id == batch.id, Ack999Result.transaction_set_id.is_(None))
    ):
        code = row.acknowledgment_code
        add(row, f"{code}: {ACK999_CODES.get(code, code)}")
    _add_277ca(session, batch, add)
    ordered = sorted(entries.values(), key=lambda e: e.pop("_order"))
    return ordered


def _add_277ca(session: Session, batch: SubmissionBatch, add: Callable[[Any, str | None], None]) -> None:
    claims_of_batch = select(BatchClaim.claim_id).where(BatchClaim.batch_id == batch.id)
    since = batch.built_at or batch.created_at
    next_batch: dict[int, datetime] = {}
    for claim_id, built_at in session.execute(
        select(BatchClaim.claim_id, func.min(SubmissionBatch.built_at))
        .join(SubmissionBatch, SubmissionBatch.id == BatchClaim.batch_id)
        .where(
            BatchClaim.claim_id.in_(claims_of_batch),
            BatchClaim.batch_id != batch.id,
            SubmissionBatch.built_at > since,
        )
        .group_by(BatchClaim.claim_id)
    ):
        next_batch[claim_id] = built_at
    rows: dict[int, Any] = {}
    latest: dict[int, dict[int, str]] = {}  # file -> claim -> outcome of its last status there
    for row in session.execute(
        select(*_FILE_COLUMNS, ClaimStatusEvent.claim_id, ClaimStatusEvent.category_code)
        .join(ClaimStatusEvent, ClaimStatusEvent.edi_file_id == EdiFile.id)
        .where(ClaimStatusEvent.claim_id.in_(claims_of_batch), EdiFile.received_at >= since)
        .order_by(ClaimStatusEvent.id)
    ):
        until = next_batch.get(row.claim_id)
        if until is not None and row.received_at >= until:
            continue
        rows[row.id] = row
        latest.setdefault(row.id, {})[row.claim_id] = category_outcome(row.category_code)
    for file_id, row in rows.items():
        counts: dict[str, int] = {}
        for outcome in latest[file_id].values():
            counts[outcome] = counts.get(outcome, 0) + 1
        add(row, "claims: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))


# -- what is ready (the workspace's Ready to send screen) ---------------------------------------


@dataclass
class ReadyGroup:
    """Ready claims of one payer or one route: how many, and their charges."""

    id: str | None  # public id; None: payers with no active route
    name: str
    claims: int = 0
    total_cents: int = 0


@dataclass
class ReadyOverview:
    """Every ready claim counted and totalled by payer and by route (column queries, no PHI)."""

    by_payer: list[ReadyGroup]
    by_route: list[ReadyGroup]
    claims: int
    total_cents: int
    unrouted_claims: int  # ready, but their payer has no active route: they cannot go out


def ready_overview(session: Session) -> ReadyOverview:
    """Ready claims per payer and per route (inactive or missing routes grouped as "no route")."""
    stmt = (
        select(
            Payer.public_id,
            Payer.name,
            ClearinghouseRoute.public_id,
            ClearinghouseRoute.name,
            ClearinghouseRoute.active,
            func.count(Claim.id),
            func.coalesce(func.sum(Claim.total_charge_cents), 0),
        )
        .select_from(Claim)
        .join(Coverage, Coverage.id == Claim.coverage_id)
        .join(Payer, Payer.id == Coverage.payer_id)
        .outerjoin(ClearinghouseRoute, ClearinghouseRoute.id == Payer.route_id)
        .where(Claim.state == ClaimState.READY)
        .group_by(
            Payer.public_id,
            Payer.name,
            ClearinghouseRoute.public_id,
            ClearinghouseRoute.name,
            ClearinghouseRoute.active,
        )
    )
    payers: dict[str, ReadyGroup] = {}
    routes: dict[str | None, ReadyGroup] = {}
    for payer, payer_name, route, route_name, active, claims, total in session.execute(stmt):
        group = payers.setdefault(payer, ReadyGroup(payer, payer_name))
        group.claims += int(claims)
        group.total_cents += int(total)
        key = route if route is not None and active else None
        slot = routes.setdefault(key, ReadyGroup(key, route_name if key else "No active route"))
        slot.claims += int(claims)
        slot.total_cents += int(total)
    by_route = sorted(routes.values(), key=lambda g: (g.id is None, g.name))
    return ReadyOverview(
        by_payer=sorted(payers.values(), key=lambda g: g.name),
        by_route=by_route,
        claims=sum(g.claims for g in by_route),
        total_cents=sum(g.total_cents for g in by_route),
        unrouted_claims=routes[None].claims if None in routes else 0,
    )


def ready_claims(session: Session, *, route: str | None = None, limit: int = 500) -> list[Claim]:
    """The oldest ``limit`` ready claims (of one route), with patient, coverage, payer and route loaded."""
    query = (
        select(Claim)
        .where(Claim.state == ClaimState.READY)
        .order_by(Claim.id)
        .limit(limit)
        .options(
            selectinload(Claim.patient),
            selectinload(Claim.coverage).selectinload(Coverage.payer).selectinload(Payer.route),
        )
    )
    if route is not None:
        route_id = select(ClearinghouseRoute.id).where(ClearinghouseRoute.public_id == route)
        payers = select(Payer.id).where(Payer.route_id == route_id.scalar_subquery())
        query = query.where(Claim.coverage_id.in_(select(Coverage.id).where(Coverage.payer_id.in_(payers))))
    return list(session.scalars(query))


def first_service_dates(session: Session, claim_ids: Sequence[int]) -> dict[int, date]:
    """Each claim's earliest date of service (from its lines)."""
    out: dict[int, date] = {}
    for start in range(0, len(claim_ids), _ID_CHUNK):
        chunk = list(claim_ids[start : start + _ID_CHUNK])
        for claim_id, first in session.execute(
            select(ServiceLine.claim_id, func.min(ServiceLine.service_date_from))
            .where(ServiceLine.claim_id.in_(chunk))
            .group_by(ServiceLine.claim_id)
        ):
            out[claim_id] = first
    return out
