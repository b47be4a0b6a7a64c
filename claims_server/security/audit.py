"""The audit trail: append-only, HMAC hash-chained events shaped like FHIR AuditEvent.

HIPAA 164.312(b) (audit controls) and 164.312(c)(1) (integrity). Each event's ``hash``
is HMAC-SHA256, under the audit key named in ``key_id``, of the canonical event and the
previous event's hash, so editing, deleting, reordering or forging a row breaks the
chain (``claims-server audit verify``); signed checkpoints written outside the
database (``claims_server.security.checkpoints``) catch truncation of the tail. The
database refuses UPDATE and DELETE on the table (``claims_server.security.immutability``).

Use ``audit_event(session, action=..., event_type=..., ...)`` in the same transaction as
the change it records; the row commits or rolls back with it. ``details`` holds field
names, counts and codes, never PHI values. Changes to PHI columns made through the ORM
are audited automatically on flush (``<table>.create`` / ``<table>.update`` with the
names of the fields); reads of PHI are audited by the service or view that reads.

Appends are serialized per database: PostgreSQL takes a transaction-scoped advisory
lock, SQLite takes the write lock, before reading the chain head; the lock is held
until the transaction ends, so concurrent writers can never fork the chain.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import instance_state

from claims_server.db import bulk_insert
from claims_server.models.encrypted import encrypted_attributes
from claims_server.models.security import AuditAction, AuditEvent, AuditOutcome, KeyPurpose
from claims_server.security import clock
from claims_server.security.fields import cipher_for
from claims_server.security.principal import PrincipalKind, current_principal, request_source

__all__ = [
    "AuditAction",
    "AuditOutcome",
    "audit_event",
    "audit_events_bulk",
    "canonical_event",
    "chain_hash",
]

#: pg_advisory_xact_lock key of the audit chain ("audit" in ASCII).
PG_CHAIN_LOCK = 0x61756469_74
CHAIN_VERSION = 1
_JSON_SCALARS = (str, int, bool, type(None))


def timestamp_text(value: datetime) -> str:
    """The canonical text of an event time (UTC, microseconds), identical after a DB round trip."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: The exact types a flat ``details`` mapping usually holds (all allowed by ``_check_details``).
_FLAT_SCALARS = frozenset({str, int, bool, type(None)})


def _check_details(value: Any, path: str = "details") -> None:
    """Details are JSON of str/int/bool/None (no floats: money is integer cents)."""
    if type(value) is dict and all(
        type(key) is str and type(sub) in _FLAT_SCALARS for key, sub in value.items()
    ):
        return  # the common case, decided without a call per value
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be text")
            _check_details(sub, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, sub in enumerate(value):
            _check_details(sub, f"{path}[{i}]")
    elif isinstance(value, float) or not isinstance(value, _JSON_SCALARS):
        raise TypeError(f"{path}: only text, whole numbers, booleans and null are allowed")


#: One encoder for every event (``json.dumps`` would build one per call; verification is hot).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_event(fields: Mapping[str, Any]) -> bytes:
    """The bytes the chain hash covers: every stored field except the row id and the hash.

    The row id is left out on purpose: it is assigned by the database after the hash is
    computed; order is carried by ``prev_hash`` instead.
    """
    action = fields["action"]
    return _CANONICAL_JSON(
        [
            CHAIN_VERSION,
            fields["prev_hash"],
            timestamp_text(fields["occurred_at"]),
            fields["actor_user_id"],
            fields["actor_token_id"],
            fields["actor_role"],
            action.value if isinstance(action, AuditAction) else action,
            fields["event_type"],
            fields["entity_type"],
            fields["entity_id"],
            fields["patient_id"],
            int(fields["outcome"]),
            fields["source_address"],
            fields["request_id"],
            fields["details"] or {},
            fields["key_id"],
        ]
    ).encode("utf-8")


def chain_hash(key: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 hex of the canonical event (which includes ``prev_hash``)."""
    return hmac.digest(key, canonical_event(fields), "sha256").hex()


@dataclass
class _ChainHead:
    last_event: AuditEvent | None
    last_hash: str | None
    appended: int = 0


def lock_chain(session: Session) -> None:
    """Serialize audit appends for the rest of this transaction (see module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_CHAIN_LOCK})
    else:
        # A write statement that matches nothing still takes SQLite's write lock.
        session.execute(text("DELETE FROM audit_events WHERE 1 = 0"))


def _head(session: Session) -> _ChainHead:
    """The chain head this session's next event links to, locked for the transaction.

    The head is the session's own last event while it is still in the session (pending or
    flushed); otherwise (the transaction's first event, after ``audit_events_bulk``, after a
    savepoint rolled the last one back) it is read from the table. That read, and the lock
    before it, run with autoflush off: a flush can itself append events (the PHI-change
    audit of ``_write_phi_changes`` runs inside it and calls ``audit_event``), which would
    link to the same head this read returns while they are still pending, unseen by the
    query, and the chain would fork (two events with one ``prev_hash``). Pending changes
    flush later as usual, and the events their flush appends then follow this one.
    """
    head: _ChainHead | None = session.info.get("audit_chain")
    if head is not None and head.last_event is not None:
        state = instance_state(head.last_event)
        if state.session_id == session.hash_key and (state.pending or state.persistent):
            return head
    with session.no_autoflush:
        if head is None:
            lock_chain(session)
        last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    head = _ChainHead(None, last, head.appended if head else 0)
    session.info["audit_chain"] = head
    return head


def audit_event(
    session: Session,
    *,
    action: AuditAction,
    event_type: str,
    entity_type: str | None = None,
    entity_id: str | None = None,
    patient_id: int | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one chained audit event to ``session``'s transaction and return it (not flushed).

    The actor (user, token, role), source address and request id come from the current
    request and principal; outside a request the actor is the system (or whoever
    ``acting_as`` names). ``entity_id`` is a public id, never a row id or PHI.
    """
    principal = current_principal()
    payload = dict(details or {})
    if principal.kind in (PrincipalKind.SYSTEM, PrincipalKind.PATIENT, PrincipalKind.ANONYMOUS):
        payload.setdefault("actor", principal.name)
    _check_details(payload)
    address, request_id = request_source()
    ring = cipher_for(session).ring
    key_id, key = ring.active_key(KeyPurpose.AUDIT)
    head = _head(session)
    fields: dict[str, Any] = {
        "occurred_at": clock.now(),
        "actor_user_id": principal.user_id,
        "actor_token_id": principal.token_id,
        "actor_role": principal.role,
        "action": AuditAction(action),
        "event_type": event_type,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "patient_id": patient_id if patient_id is not None else principal.patient_id,
        "outcome": int(outcome),
        "source_address": address,
        "request_id": request_id,
        "details": payload,
        "prev_hash": head.last_hash,
        "key_id": key_id,
    }
    fields["hash"] = chain_hash(key, fields)
    row = AuditEvent(**fields)
    session.add(row)
    head.last_event = row
    head.last_hash = row.hash
    head.appended += 1
    session.info["audit_uncommitted"] = session.info.get("audit_uncommitted", 0) + 1
    return row


#: The keys an event of :func:`audit_events_bulk` may have: ``audit_event``'s keyword arguments.
_BULK_KEYS = frozenset(
    {"action", "event_type", "entity_type", "entity_id", "patient_id", "outcome", "details"}
)


def audit_events_bulk(session: Session, events: Iterable[Mapping[str, Any]]) -> int:
    """Append many chained audit events with one bulk INSERT (COPY on PostgreSQL); returns how many.

    Each event is a mapping of :func:`audit_event`'s keyword arguments (``action`` and
    ``event_type`` required). The chain is the one ``audit_event`` extends, under the same
    lock: the session is flushed first (events it added or that the flush appends come
    before these in the chain and must get the lower ids), then the HMAC of every new
    row is computed in memory from the head onwards and the rows are inserted in chain
    order, so ids and ``prev_hash`` links agree and ``audit verify`` passes. For
    thousands of events (a batch moving its claims, a remittance posting its entries)
    this replaces thousands of ORM inserts; the rows are not returned as ORM objects.
    It is the one bulk path to the chain: services that audit one event at a time take
    an ``audit_events`` list to collect theirs for it instead (``claims.state.transition``).
    """
    specs = list(events)
    if not specs:
        return 0
    principal = current_principal()
    address, request_id = request_source()
    ring = cipher_for(session).ring
    key_id, key = ring.active_key(KeyPurpose.AUDIT)
    actor = (
        principal.name
        if principal.kind in (PrincipalKind.SYSTEM, PrincipalKind.PATIENT, PrincipalKind.ANONYMOUS)
        else None
    )
    rows: list[dict[str, Any]] = []
    # Events often share one details mapping: each distinct one is checked once (``specs``
    # keeps every mapping alive, so an id cannot be reused by another within this call).
    checked: set[int] = set()
    for spec in specs:
        unknown = set(spec) - _BULK_KEYS
        if unknown:
            raise TypeError(f"unknown audit event keys: {', '.join(sorted(unknown))}")
        details = spec.get("details") or {}
        if details and id(details) not in checked:
            _check_details(details)
            checked.add(id(details))
        payload = dict(details)
        if actor is not None:
            payload.setdefault("actor", actor)
        patient_id = spec.get("patient_id")
        rows.append(
            {
                "actor_user_id": principal.user_id,
                "actor_token_id": principal.token_id,
                "actor_role": principal.role,
                "action": AuditAction(spec["action"]),
                "event_type": spec["event_type"],
                "entity_type": spec.get("entity_type"),
                "entity_id": spec.get("entity_id"),
                "patient_id": patient_id if patient_id is not None else principal.patient_id,
                "outcome": int(spec.get("outcome", AuditOutcome.SUCCESS)),
                "source_address": address,
                "request_id": request_id,
                "details": payload,
                "key_id": key_id,
            }
        )
    # Everything pending is flushed first, and then the events that flush appended (PHI
    # changes are audited after each flush): every earlier event gets its id before these,
    # and reading the chain head below cannot autoflush a new event behind our back.
    session.flush()
    if any(isinstance(obj, AuditEvent) for obj in session.new):
        session.flush()
    head = _head(session)

    def chained() -> Iterator[dict[str, Any]]:
        previous = head.last_hash
        for row in rows:
            row["occurred_at"] = clock.now()
            row["prev_hash"] = previous
            row["hash"] = previous = chain_hash(key, row)
            yield row

    # Core rows, no ORM objects to build or track: COPY on PostgreSQL (ids drawn from the
    # sequence in row order, so id order is chain order), one executemany INSERT elsewhere.
    # Each row is hashed as it is sent, so the database stores the first rows while the
    # next ones are hashed instead of after all of them.
    bulk_insert(session, AuditEvent.__table__, chained())
    # The head is now a row without an ORM object: the next append reads it back (still
    # under this transaction's lock).
    head.last_event = None
    head.last_hash = rows[-1]["hash"]
    head.appended += len(rows)
    session.info["audit_uncommitted"] = session.info.get("audit_uncommitted", 0) + len(rows)
    return len(rows)


def take_uncommitted_count(session: Session) -> int:
    """How many events the session appended since its last commit or rollback (and reset it)."""
    return session.info.pop("audit_uncommitted", 0)


#: Events committed in this process, per database URL, since ``take_committed_counts`` last ran.
_COMMITTED: dict[str, int] = {}
#: Called with (engine, events) after each commit that appended events (the server's checkpointer).
COMMIT_LISTENERS: list[Callable[[Engine, int], None]] = []


def take_committed_counts() -> dict[str, int]:
    """Events committed in this process per database URL since the last call (and reset): the CLI
    writes a checkpoint after a command for each database its command appended to."""
    counts = dict(_COMMITTED)
    _COMMITTED.clear()
    return counts


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    appended = take_uncommitted_count(session)
    if not appended:
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    url = engine.url.render_as_string(hide_password=False)
    _COMMITTED[url] = _COMMITTED.get(url, 0) + appended
    for listener in COMMIT_LISTENERS:
        listener(engine, appended)


@event.listens_for(Session, "after_rollback")
def _drop_uncommitted(session: Session) -> None:
    take_uncommitted_count(session)


@event.listens_for(Session, "after_transaction_end")
def _reset_chain_head(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop("audit_chain", None)


# --- automatic audit of PHI changes ------------------------------------------------------


def _phi_keys(obj: Any) -> list[str]:
    mapper = instance_state(obj).mapper
    return [a.key for a in encrypted_attributes(mapper) if mapper.columns[a.column].info.get("phi")]


@event.listens_for(Session, "after_flush")
def _collect_phi_changes(session: Session, flush_context: UOWTransaction) -> None:
    changes: list[tuple[AuditAction, Any, list[str]]] = session.info.setdefault("phi_changes", [])
    for obj in session.new:
        keys = _phi_keys(obj)
        if keys:
            changes.append((AuditAction.CREATE, obj, [k for k in keys if getattr(obj, k, None) is not None]))
    for obj in session.dirty:
        keys = _phi_keys(obj)
        if not keys:
            continue
        state = instance_state(obj)
        changed = [k for k in keys if state.attrs[k].history.has_changes()]
        if changed:
            changes.append((AuditAction.UPDATE, obj, changed))
    for obj in session.deleted:
        if _phi_keys(obj):
            changes.append((AuditAction.DELETE, obj, []))


@event.listens_for(Session, "after_flush_postexec")
def _write_phi_changes(session: Session, flush_context: UOWTransaction) -> None:
    changes = session.info.pop("phi_changes", None)
    if not changes:
        return
    verbs = {AuditAction.CREATE: "create", AuditAction.UPDATE: "update", AuditAction.DELETE: "delete"}
    for action, obj, keys in changes:
        table = instance_state(obj).mapper.local_table.name
        patient_id = obj.id if table == "patients" else getattr(obj, "patient_id", None)
        audit_event(
            session,
            action=action,
            event_type=f"{table}.{verbs[action]}",
            entity_type=table,
            entity_id=obj.__dict__.get("public_id"),
            patient_id=None if action is AuditAction.DELETE else patient_id,
            details={"fields": sorted(keys)} if keys else None,
        )
