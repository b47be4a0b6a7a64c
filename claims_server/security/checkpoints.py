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

A second place (``AUDIT_CHECKPOINT_MIRROR``: a directory on another mount, an SFTP
server, or syslog) gets a copy of every checkpoint; ``verify_audit_chain`` given that
mirror checks its checkpoints against the chain too and compares the two sets, so a
checkpoint deleted or altered in either place, or a tail cut shorter than a mirrored
checkpoint says, fails verification. Besides the count and the interval, a checkpoint
is written after every CLI command that appended events (``cli_checkpoint_after_command``)
and by the timer (the server's thread, and the ``claims_server.audit.checkpoint`` beat
task) whenever the chain head moved since the last one, whoever appended the events.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from claims_server.models.security import AuditEvent
from claims_server.security.audit import COMMIT_LISTENERS, chain_hash, timestamp_text
from claims_server.security.keys import KeyRing, KeyRingError

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "checkpoint-*.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d{12})-\d{8}T\d{12}\.json$")


class CheckpointMirrorError(RuntimeError):
    """The checkpoint was written locally but not to the second place."""


class CheckpointStore(Protocol):
    """Where checkpoint files live: ``put`` one, and (when ``readable``) list and read them back."""

    label: str
    readable: bool

    def put(self, name: str, data: bytes) -> None: ...

    def names(self) -> list[str]: ...

    def get(self, name: str) -> bytes: ...

    def close(self) -> None: ...


class DirectoryStore:
    """A folder, ideally on another mount than the database (written atomically, 0600)."""

    readable = True

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.label = f"directory {self.directory}"

    def put(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.directory / name)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.glob(CHECKPOINT_GLOB))

    def get(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def close(self) -> None:
        return None


class SftpStore:
    """A folder on an SFTP server (the clearinghouse adapter: host key pinned, upload read back)."""

    readable = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        path: str,
        host_key: str,
        password: str | None,
        private_key_file: str | None,
    ) -> None:
        from claims_server.clearinghouse.transport import SftpTransport

        self.label = f"sftp://{username}@{host}:{port}/{path}"
        self._transport = SftpTransport(
            host=host,
            port=port,
            username=username,
            host_key=host_key,
            outbound_dir=path,
            inbound_dir=path,
            password=password,
            private_key_file=private_key_file,
            timeout=15,
        )

    def put(self, name: str, data: bytes) -> None:
        self._transport.upload(name, data)

    def names(self) -> list[str]:
        return [n for n in self._transport.list_inbox() if _CHECKPOINT_NAME.match(n)]

    def get(self, name: str) -> bytes:
        return self._transport.fetch(name)

    def close(self) -> None:
        self._transport.close()


class SyslogStore:
    """Syslog (UDP to a remote collector, or the local socket): write-only, compared by hand."""

    readable = False

    def __init__(self, address: str | tuple[str, int]) -> None:
        import logging.handlers

        self.label = f"syslog {address}"
        self._handler = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH
        )

    def put(self, name: str, data: bytes) -> None:
        record = logging.LogRecord(
            "claims_server.audit",
            logging.INFO,
            __file__,
            0,
            "claims-server audit-checkpoint %s %s",
            (name, data.decode().strip()),
            None,
        )
        self._handler.emit(record)

    def names(self) -> list[str]:
        raise CheckpointMirrorError("syslog cannot be read back")

    def get(self, name: str) -> bytes:
        raise CheckpointMirrorError("syslog cannot be read back")

    def close(self) -> None:
        self._handler.close()


def parse_mirror(value: str) -> tuple[str, dict[str, Any]]:
    """``AUDIT_CHECKPOINT_MIRROR`` as (kind, parts); ValueError naming what is wrong.

    A path or ``file:///path`` (a directory), ``sftp://user@host[:port]/path``, ``syslog``
    (the local socket) or ``syslog://host[:port]`` (UDP).
    """
    text = value.strip()
    if text.startswith("/") or text.startswith("file://"):
        path = unquote(urlsplit(text).path) if text.startswith("file://") else text
        if not path.startswith("/"):
            raise ValueError("a directory must be an absolute path")
        return "directory", {"path": path}
    if text == "syslog":
        return "syslog", {"address": "/dev/log"}
    parts = urlsplit(text)
    if parts.scheme == "syslog" and parts.hostname:
        return "syslog", {"address": (parts.hostname, parts.port or 514)}
    if parts.scheme == "sftp" and parts.hostname and parts.username:
        path = unquote(parts.path).lstrip("/")
        if not path:
            raise ValueError("an sftp:// mirror needs a folder: sftp://user@host/folder")
        return "sftp", {
            "host": parts.hostname,
            "port": parts.port or 22,
            "username": unquote(parts.username),
            "path": path,
        }
    raise ValueError(
        "use an absolute directory, file:///dir, sftp://user@host[:port]/folder, syslog or syslog://host[:port]"
    )


def open_mirror(settings: Any) -> CheckpointStore | None:
    """The second place the settings name, opened (None when ``AUDIT_CHECKPOINT_MIRROR`` is empty)."""
    if not settings.AUDIT_CHECKPOINT_MIRROR:
        return None
    kind, parts = parse_mirror(settings.AUDIT_CHECKPOINT_MIRROR)
    if kind == "directory":
        return DirectoryStore(Path(parts["path"]))
    if kind == "syslog":
        return SyslogStore(parts["address"])
    return SftpStore(
        **parts,
        host_key=settings.AUDIT_CHECKPOINT_MIRROR_HOST_KEY,
        password=settings.AUDIT_CHECKPOINT_MIRROR_PASSWORD or None,
        private_key_file=settings.AUDIT_CHECKPOINT_MIRROR_KEY_FILE or None,
    )


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
    connection: Connection,
    ring: KeyRing,
    directory: Path,
    when: datetime,
    *,
    mirror: CheckpointStore | Callable[[], CheckpointStore | None] | None = None,
) -> Checkpoint | None:
    """Sign and write a checkpoint of the committed chain head; None when the table is empty.

    With ``mirror`` (a store, or a callable opening one) the same file is also written
    there; if that fails the local checkpoint stays and :class:`CheckpointMirrorError` says so.
    """
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
    name = f"checkpoint-{cp.last_event_id:012d}-{when.strftime('%Y%m%dT%H%M%S%f')}.json"
    data = (json.dumps(body, sort_keys=True) + "\n").encode()
    DirectoryStore(Path(directory)).put(name, data)
    if mirror is not None:
        store = None
        try:
            store = mirror() if callable(mirror) else mirror
            if store is not None:
                store.put(name, data)
                _backfill(store, DirectoryStore(Path(directory)))
        except Exception as exc:
            raise CheckpointMirrorError(
                f"checkpoint {name} written locally but not to the mirror: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            if store is not None and callable(mirror):
                store.close()
    return cp


def _backfill(mirror: CheckpointStore, local: DirectoryStore) -> None:
    """Copy to ``mirror`` every local checkpoint it lacks: those written before the mirror was
    set up, and any whose mirror write failed (retried here, at the next checkpoint)."""
    if not mirror.readable:
        return  # syslog: write-only, nothing to compare against
    for name in sorted(set(local.names()) - set(mirror.names())):
        mirror.put(name, local.get(name))


def last_checkpointed_event_id(directory: Path) -> int | None:
    """The event id of the newest local checkpoint (from the file names), None when there is none."""
    ids = [
        int(m.group(1))
        for p in Path(directory).glob(CHECKPOINT_GLOB)
        if (m := _CHECKPOINT_NAME.match(p.name))
    ]
    return max(ids) if ids else None


def chain_head_id(connection: Connection) -> int | None:
    table = AuditEvent.__table__
    return connection.execute(select(func.max(table.c.id))).scalar()


def checkpoint_if_head_moved(
    engine: Engine,
    ring: KeyRing,
    directory: Path,
    when: datetime,
    *,
    mirror: CheckpointStore | Callable[[], CheckpointStore | None] | None = None,
) -> Checkpoint | None:
    """Write a checkpoint when the chain has events the newest local checkpoint does not cover."""
    with engine.connect() as conn:
        head = chain_head_id(conn)
        if head is None or head == last_checkpointed_event_id(directory):
            return None
        return write_checkpoint(conn, ring, directory, when, mirror=mirror)


@dataclass
class VerifyReport:
    events: int = 0
    checkpoints: int = 0
    mirror_checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit_chain(
    connection: Connection, ring: KeyRing, directory: Path | None, mirror: CheckpointStore | None = None
) -> VerifyReport:
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
    local: dict[str, bytes] = {}
    if directory is not None:
        for path in sorted(Path(directory).glob(CHECKPOINT_GLOB)):
            try:
                local[path.name] = path.read_bytes()
            except OSError:
                local[path.name] = b""
        for name, data in local.items():
            report.checkpoints += 1
            _check_checkpoint(f"checkpoint {name}", data, hashes, ring, report)
    if mirror is not None:
        _compare_mirror(mirror, local, hashes, ring, report, directory is not None)
    return report


def _check_checkpoint(
    label: str, data: bytes, hashes: dict[int, tuple[str, int]], ring: KeyRing, report: VerifyReport
) -> None:
    """One checkpoint file: signed by an audit signing key, and its event still there as it was."""
    try:
        body = json.loads(data)
        cp = Checkpoint(
            int(body["last_event_id"]),
            str(body["last_hash"]),
            int(body["event_count"]),
            str(body["created_at"]),
            str(body["signing_key_id"]),
        )
        ring.verify_key(cp.signing_key_id).verify(base64.b64decode(body["signature"]), cp.payload())
    except (KeyError, ValueError, TypeError, InvalidSignature, KeyRingError):
        report.problems.append(f"{label}: bad signature or format")
        return
    seen = hashes.get(cp.last_event_id)
    if seen is None:
        report.problems.append(f"{label}: event {cp.last_event_id} is missing (the log was truncated)")
    elif seen[0] != cp.last_hash:
        report.problems.append(f"{label}: event {cp.last_event_id} has a different hash")
    elif seen[1] != cp.event_count:
        report.problems.append(
            f"{label}: {seen[1]} events up to {cp.last_event_id}, checkpoint says {cp.event_count}"
        )


def _compare_mirror(
    mirror: CheckpointStore,
    local: dict[str, bytes],
    hashes: dict[int, tuple[str, int]],
    ring: KeyRing,
    report: VerifyReport,
    compare: bool,
) -> None:
    """Check the mirror's checkpoints against the chain and the two sets against each other."""
    if not mirror.readable:
        report.notes.append(f"mirror {mirror.label} cannot be read back: compare it by hand")
        return
    try:
        names = mirror.names()
        remote = {name: mirror.get(name) for name in names}
    except Exception as exc:
        report.problems.append(f"mirror {mirror.label}: cannot be read ({type(exc).__name__}: {exc})")
        return
    report.mirror_checkpoints = len(remote)
    for name, data in remote.items():
        _check_checkpoint(f"mirror checkpoint {name}", data, hashes, ring, report)
    if not compare:
        return
    for name in sorted(set(remote) - set(local)):
        report.problems.append(f"checkpoint {name}: in the mirror but missing locally (deleted)")
    for name in sorted(set(local) - set(remote)):
        report.problems.append(f"checkpoint {name}: missing in the mirror {mirror.label}")
    for name in sorted(set(local) & set(remote)):
        if _canonical(local[name]) != _canonical(remote[name]):
            report.problems.append(f"checkpoint {name}: differs between here and the mirror")


def _canonical(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


class Checkpointer:
    """Writes a checkpoint after N committed events, or after T seconds when the chain moved.

    The count covers events committed through this process's engine; the interval covers
    everyone else's (workers, the CLI, other server processes): every T seconds the chain
    head is compared with the newest local checkpoint.
    """

    def __init__(
        self,
        engine: Engine,
        ring: Callable[[], KeyRing],
        directory: Path,
        *,
        every_events: int,
        every_seconds: int,
        clock: Callable[[], datetime],
        mirror: Callable[[], CheckpointStore | None] | None = None,
    ) -> None:
        self.engine = engine
        self.ring = ring
        self.directory = directory
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.clock = clock
        self.mirror = mirror
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
            if self.pending >= self.every_events:
                return self._write()
            if (self.clock() - self.last_written).total_seconds() < self.every_seconds:
                return None
            if self.pending > 0:
                return self._write()
            # Nothing committed here: did another process append since the last checkpoint?
            try:
                with self.engine.connect() as conn:
                    moved = chain_head_id(conn) not in (None, last_checkpointed_event_id(self.directory))
            except Exception:
                log.exception("could not read the audit chain head")
                return None
            if not moved:
                self.last_written = self.clock()  # checked: look again one interval from now
                return None
            return self._write()

    def write_now(self) -> Checkpoint | None:
        with self._lock:
            return self._write()

    def _write(self) -> Checkpoint | None:
        cp = None
        try:
            with self.engine.connect() as conn:
                cp = write_checkpoint(conn, self.ring(), self.directory, self.clock(), mirror=self.mirror)
        except CheckpointMirrorError as exc:
            # Written here; the mirror missed it (``audit verify`` will say so). Not retried as a
            # new checkpoint every few seconds: the next one goes to the mirror as usual.
            log.error("audit checkpoint mirror failed: %s", exc)
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
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                self.maybe_write()

        self._thread = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (waiting for a check under way, at most ``timeout`` seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, Checkpointer] = weakref.WeakKeyDictionary()


def register_checkpointer(checkpointer: Checkpointer) -> None:
    """Count events committed by every session on the checkpointer's engine."""
    _CHECKPOINTERS[checkpointer.engine] = checkpointer


def checkpointer_for(engine: Engine) -> Checkpointer | None:
    return _CHECKPOINTERS.get(engine)


def stop_all_checkpointers() -> int:
    """Stop every running checkpointer thread of this process (tests, before their database
    goes); returns how many were running."""
    running = [cp for cp in list(_CHECKPOINTERS.values()) if cp._thread is not None]
    for checkpointer in running:
        checkpointer.stop()
    return len(running)


def _record_committed(engine: Engine, appended: int) -> None:
    checkpointer = _CHECKPOINTERS.get(engine)
    if checkpointer is not None:
        checkpointer.record(appended)


COMMIT_LISTENERS.append(_record_committed)


def checkpoint_after_cli_command(settings: Any, counts: dict[str, int]) -> list[str]:
    """After a CLI command: a checkpoint (here and in the mirror) for each database it appended
    audit events to (``counts`` from ``take_committed_counts``); returns one line per problem."""
    from claims_server.db import make_engine
    from claims_server.security.clock import system_clock
    from claims_server.security.fields import cipher_for

    problems = []
    for url, appended in counts.items():
        if not appended:
            continue
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                ring = cipher_for(None, conn).ring
            checkpoint_if_head_moved(
                engine,
                ring,
                Path(settings.audit_checkpoint_dir),
                system_clock(),
                mirror=lambda: open_mirror(settings),
            )
        except Exception as exc:
            problems.append(f"audit checkpoint not written: {type(exc).__name__}: {exc}")
        finally:
            engine.dispose()
    return problems
