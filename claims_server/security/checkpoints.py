"""Signed audit checkpoints outside the database, and verification of the whole chain.

A checkpoint is a small JSON file ``{last_event_id, last_hash, event_count, created_at,
signing_key_id}`` signed with the Ed25519 audit signing key, written to
``AUDIT_CHECKPOINT_DIR`` (default ``INSTANCE_PATH/audit-checkpoints``; point it at
storage the database host cannot write). The app writes one after every
``AUDIT_CHECKPOINT_EVENTS`` events or ``AUDIT_CHECKPOINT_SECONDS`` seconds, whichever
comes first (a commit hook counts events, a daemon thread covers quiet periods).

``verify_audit_chain`` recomputes every HMAC in id order, follows ``prev_hash`` links,
and checks every checkpoint's signature and that its event is still there with the same
hash and the same number of events up to it: edits, deletions, swaps and forged rows
fail the chain, truncation before the last checkpoint fails a checkpoint.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from claims_server.models.security import AuditEvent
from claims_server.security.audit import chain_hash, take_uncommitted_count, timestamp_text
from claims_server.security.keys import KeyRing, KeyRingError

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "checkpoint-*.json"


@dataclass(frozen=True)
class Checkpoint:
    last_event_id: int
    last_hash: str
    event_count: int
    created_at: str
    signing_key_id: str

    def payload(self) -> bytes:
        return json.dumps(
            {
                "created_at": self.created_at,
                "event_count": self.event_count,
                "last_event_id": self.last_event_id,
                "last_hash": self.last_hash,
                "signing_key_id": self.signing_key_id,
                "version": 1,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()


def write_checkpoint(
    connection: Connection, ring: KeyRing, directory: Path, when: datetime
) -> Checkpoint | None:
    """Sign and write a checkpoint of the committed chain head; None when the table is empty."""
    table = AuditEvent.__table__
    last = connection.execute(select(table.c.id, table.c.hash).order_by(table.c.id.desc()).limit(1)).first()
    if last is None:
        return None
    count = connection.execute(
        select(func.count()).select_from(table).where(table.c.id <= last.id)
    ).scalar_one()
    key_id, private = ring.signing_key()
    cp = Checkpoint(int(last.id), last.hash, int(count), timestamp_text(when), key_id)
    body = {
        **json.loads(cp.payload()),
        "signature": base64.b64encode(private.sign(cp.payload())).decode(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{cp.last_event_id:012d}-{when.strftime('%Y%m%dT%H%M%S%f')}.json"
    tmp = directory / (name + ".tmp")
    tmp.write_text(json.dumps(body, sort_keys=True) + "\n")
    os.replace(tmp, directory / name)
    return cp


def read_checkpoints(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(directory.glob(CHECKPOINT_GLOB)):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            out.append((path, {}))
    return out


@dataclass
class VerifyReport:
    events: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit_chain(connection: Connection, ring: KeyRing, directory: Path | None) -> VerifyReport:
    """Check every event's HMAC and link, then every checkpoint (see module docstring)."""
    report = VerifyReport()
    t = AuditEvent.__table__
    columns = [c for c in t.columns]
    prev: str | None = None
    hashes: dict[int, tuple[str, int]] = {}
    keys: dict[str, bytes] = {}
    result = connection.execution_options(stream_results=True, yield_per=2000).execute(
        select(*columns).order_by(t.c.id)
    )
    for row in result.mappings():
        report.events += 1
        event_id = row["id"]
        if row["prev_hash"] != prev:
            report.problems.append(
                f"event {event_id}: does not follow the previous event (a row was deleted, inserted or moved)"
            )
        key = keys.get(row["key_id"])
        if key is None:
            try:
                key = ring.key(row["key_id"]) if ring.purposes.get(row["key_id"]) == "audit" else None
            except KeyRingError:
                key = None
            if key is None:
                report.problems.append(f"event {event_id}: unknown audit key {row['key_id']!r} (forged row)")
                prev = row["hash"]
                continue
            keys[row["key_id"]] = key
        if not hmac.compare_digest(chain_hash(key, row), row["hash"] or ""):
            report.problems.append(f"event {event_id}: hash does not match its contents (edited or forged)")
        prev = row["hash"]
        hashes[event_id] = (row["hash"], report.events)
    if directory is None:
        return report
    for path, body in read_checkpoints(directory):
        report.checkpoints += 1
        try:
            cp = Checkpoint(
                int(body["last_event_id"]),
                str(body["last_hash"]),
                int(body["event_count"]),
                str(body["created_at"]),
                str(body["signing_key_id"]),
            )
            ring.verify_key(cp.signing_key_id).verify(base64.b64decode(body["signature"]), cp.payload())
        except (KeyError, ValueError, TypeError, InvalidSignature, KeyRingError):
            report.problems.append(f"checkpoint {path.name}: bad signature or format")
            continue
        seen = hashes.get(cp.last_event_id)
        if seen is None:
            report.problems.append(
                f"checkpoint {path.name}: event {cp.last_event_id} is missing (the log was truncated)"
            )
        elif seen[0] != cp.last_hash:
            report.problems.append(f"checkpoint {path.name}: event {cp.last_event_id} has a different hash")
        elif seen[1] != cp.event_count:
            report.problems.append(
                f"checkpoint {path.name}: {seen[1]} events up to {cp.last_event_id}, checkpoint says "
                f"{cp.event_count}"
            )
    return report


class Checkpointer:
    """Writes a checkpoint after N committed events or T seconds with new events."""

    def __init__(
        self,
        engine: Engine,
        ring: Callable[[], KeyRing],
        directory: Path,
        *,
        every_events: int,
        every_seconds: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.ring = ring
        self.directory = directory
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.clock = clock
        self.pending = 0
        self.last_written = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, appended: int) -> None:
        """Count committed events; write a checkpoint when one is due."""
        with self._lock:
            self.pending += appended
        self.maybe_write()

    def maybe_write(self) -> Checkpoint | None:
        with self._lock:
            due = self.pending > 0 and (
                self.pending >= self.every_events
                or (self.clock() - self.last_written).total_seconds() >= self.every_seconds
            )
            if not due:
                return None
            return self._write()

    def write_now(self) -> Checkpoint | None:
        with self._lock:
            return self._write()

    def _write(self) -> Checkpoint | None:
        try:
            with self.engine.connect() as conn:
                cp = write_checkpoint(conn, self.ring(), self.directory, self.clock())
        except Exception:
            log.exception("could not write an audit checkpoint")
            return None
        self.pending = 0
        self.last_written = self.clock()
        return cp

    def start(self) -> None:
        """A daemon thread so quiet periods still get a checkpoint within the interval."""
        if self._thread is not None:
            return
        interval = max(1.0, self.every_seconds / 4)

        def run() -> None:
            while not self._stop.wait(interval):
                self.maybe_write()

        self._thread = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, Checkpointer] = weakref.WeakKeyDictionary()


def register_checkpointer(checkpointer: Checkpointer) -> None:
    """Count events committed by every session on the checkpointer's engine."""
    _CHECKPOINTERS[checkpointer.engine] = checkpointer


def checkpointer_for(engine: Engine) -> Checkpointer | None:
    return _CHECKPOINTERS.get(engine)


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    appended = take_uncommitted_count(session)
    if not appended:
        return
    bind = session.get_bind()
    checkpointer = _CHECKPOINTERS.get(getattr(bind, "engine", bind))
    if checkpointer is not None:
        checkpointer.record(appended)


@event.listens_for(Session, "after_rollback")
def _drop_uncommitted(session: Session) -> None:
    take_uncommitted_count(session)
