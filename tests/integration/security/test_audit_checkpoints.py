"""Audit checkpoints after CLI commands, on a timer, and in a second place (issue 15, finding 9).

The finding: three ``users create`` events deleted by the table owner under the
maintenance setting went unnoticed, because the CLI never wrote a checkpoint and the
only checkpoints lived on the database host. Now every CLI command that appends events
ends with a signed checkpoint, the server and a beat task write one when the chain
moved, and ``audit verify`` compares the local checkpoints with a mirror (a directory,
an SFTP server, or syslog for write-only copies).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from claims_server.app import state
from claims_server.db import make_engine, make_session_factory
from claims_server.models import AuditEvent
from claims_server.security.audit import AuditAction, audit_event
from claims_server.security.checkpoints import (
    DirectoryStore,
    SyslogStore,
    checkpoint_if_head_moved,
    verify_audit_chain,
    write_checkpoint,
)
from claims_server.security.clock import system_clock
from claims_server.security.immutability import ledger_maintenance
from claims_server.security.principal import acting_as, system_principal
from tests.integration.submission.sftp_server import start_sftp_server, stop_sftp_server


def _cli(app, monkeypatch, *args: str, **env: str):
    from claims_server.cli import main

    settings = state(app).settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSTANCE_PATH", settings.INSTANCE_PATH)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(main, list(args))


def _create_users(app, monkeypatch, count: int, **env: str) -> None:
    for n in range(count):
        out = _cli(
            app,
            monkeypatch,
            "users",
            "create",
            f"cli-user-{n}",
            "--role",
            "biller",
            "--password",
            "a long synthetic passphrase",
            **env,
        )
        assert out.exit_code == 0, out.output


def _delete_cli_events(app) -> list[int]:
    """What the table owner did: delete the CLI's events under the maintenance setting."""
    engine = state(app).engine
    with engine.connect() as conn:
        ids = [
            row.id
            for row in conn.execute(select(AuditEvent.id, AuditEvent.details).order_by(AuditEvent.id))
            if (row.details or {}).get("actor") == "cli:users-create"
        ]
    assert ids
    with engine.begin() as conn, ledger_maintenance(conn):
        conn.execute(text(f"DELETE FROM audit_events WHERE id IN ({', '.join(map(str, ids))})"))
    return ids


def _checkpoint_dir(app) -> Path:
    return Path(state(app).settings.audit_checkpoint_dir)


def test_deleting_the_events_of_cli_commands_fails_verify(app, monkeypatch):
    _create_users(app, monkeypatch, 3)
    # Each command that appended events ended with a signed checkpoint of the chain head.
    assert len(list(_checkpoint_dir(app).glob("checkpoint-*.json"))) == 3
    ok = _cli(app, monkeypatch, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    # A command that appends nothing writes no checkpoint.
    assert len(list(_checkpoint_dir(app).glob("checkpoint-*.json"))) == 3
    deleted = _delete_cli_events(app)
    bad = _cli(app, monkeypatch, "audit", "verify")
    assert bad.exit_code == 1, bad.output
    assert f"event {deleted[-1]} is missing (the log was truncated)" in bad.output


def test_deleting_events_and_local_checkpoints_is_caught_by_the_directory_mirror(app, monkeypatch, tmp_path):
    mirror = tmp_path / "other-mount" / "audit"
    _create_users(app, monkeypatch, 3, AUDIT_CHECKPOINT_MIRROR=str(mirror))
    local = sorted(p.name for p in _checkpoint_dir(app).glob("checkpoint-*.json"))
    assert local and sorted(p.name for p in mirror.glob("checkpoint-*.json")) == local
    assert oct(next(mirror.glob("checkpoint-*.json")).stat().st_mode & 0o777) == "0o600"
    ok = _cli(app, monkeypatch, "audit", "verify", AUDIT_CHECKPOINT_MIRROR=str(mirror))
    assert ok.exit_code == 0, ok.output
    assert "3 checkpoints, 3 in the mirror: ok" in ok.output
    # The attacker owns the database host: deletes the events and every local checkpoint.
    deleted = _delete_cli_events(app)
    for path in _checkpoint_dir(app).glob("checkpoint-*.json"):
        path.unlink()
    bad = _cli(app, monkeypatch, "audit", "verify", AUDIT_CHECKPOINT_MIRROR=str(mirror))
    assert bad.exit_code == 1
    assert "in the mirror but missing locally (deleted)" in bad.output
    assert (
        f"mirror checkpoint {local[-1]}: event {deleted[-1]} is missing (the log was truncated)" in bad.output
    )


def test_verify_compares_both_places(app, session, tmp_path):
    ring = app.extensions["claims_security"].cipher.ring
    directory, mirror = _checkpoint_dir(app), DirectoryStore(tmp_path / "mirror")
    for n in range(4):
        audit_event(session, action=AuditAction.READ, event_type="claim.read", details={"n": n})
        session.commit()
        with state(app).engine.connect() as conn:
            write_checkpoint(conn, ring, directory, system_clock(), mirror=mirror)

    def verify() -> list[str]:
        with state(app).engine.connect() as conn:
            return verify_audit_chain(conn, ring, directory, mirror).problems

    assert verify() == []
    names = mirror.names()
    # Deleted in the mirror only.
    (mirror.directory / names[0]).unlink()
    assert verify() == [f"checkpoint {names[0]}: missing in the mirror {mirror.label}"]
    # Altered in the mirror: bad signature there, and the two copies differ.
    body = json.loads((mirror.directory / names[1]).read_text())
    body["event_count"] -= 1
    (mirror.directory / names[1]).write_text(json.dumps(body))
    problems = verify()
    assert f"mirror checkpoint {names[1]}: bad signature or format" in problems
    assert f"checkpoint {names[1]}: differs between here and the mirror" in problems


def test_sftp_mirror_against_the_test_sftp_server(app, monkeypatch, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    info, loop, listener = start_sftp_server(tmp_path / "sftp-root", keys)
    (info.root / "audit").mkdir()
    env = {
        "AUDIT_CHECKPOINT_MIRROR": f"sftp://claims@{info.host}:{info.port}/audit",
        "AUDIT_CHECKPOINT_MIRROR_HOST_KEY": info.host_key,
        "AUDIT_CHECKPOINT_MIRROR_KEY_FILE": info.client_key_file,
    }
    try:
        _create_users(app, monkeypatch, 2, **env)
        remote = sorted(p.name for p in (info.root / "audit").iterdir())
        assert remote == sorted(p.name for p in _checkpoint_dir(app).glob("checkpoint-*.json"))
        assert len(remote) == 2
        ok = _cli(app, monkeypatch, "audit", "verify", **env)
        assert ok.exit_code == 0, ok.output
        assert "2 checkpoints, 2 in the mirror: ok" in ok.output
        # The server's copy is the one the attacker cannot reach: truncation shows there.
        deleted = _delete_cli_events(app)
        for path in _checkpoint_dir(app).glob("checkpoint-*.json"):
            path.unlink()
        bad = _cli(app, monkeypatch, "audit", "verify", **env)
        assert bad.exit_code == 1
        assert f"mirror checkpoint {remote[-1]}: event {deleted[-1]} is missing" in bad.output
        # An unreachable mirror is a failure, not a silent pass.
        info.refuse_logins.set()
        down = _cli(app, monkeypatch, "audit", "verify", **env)
        assert down.exit_code == 1 and "cannot be opened" in down.output
    finally:
        stop_sftp_server(loop, listener, info)


def test_syslog_mirror_gets_each_checkpoint(app, session):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    try:
        store = SyslogStore(receiver.getsockname())
        audit_event(session, action=AuditAction.READ, event_type="claim.read")
        session.commit()
        with state(app).engine.connect() as conn:
            cp = write_checkpoint(
                conn,
                app.extensions["claims_security"].cipher.ring,
                _checkpoint_dir(app),
                system_clock(),
                mirror=store,
            )
        message = receiver.recv(65536).decode()
        store.close()
    finally:
        receiver.close()
    assert f"audit-checkpoint checkpoint-{cp.last_event_id:012d}-" in message
    assert f'"last_hash": "{cp.last_hash}"' in message and '"signature"' in message
    with state(app).engine.connect() as conn:
        report = verify_audit_chain(
            conn, app.extensions["claims_security"].cipher.ring, _checkpoint_dir(app), store
        )
    assert report.ok and report.notes == [f"mirror {store.label} cannot be read back: compare it by hand"]


def test_the_server_timer_covers_events_appended_by_other_processes(app, frozen_clock):
    """A worker (another engine, no checkpointer of its own) appends; the server's timer signs it."""
    checkpointer = app.extensions["claims_security"].checkpointer
    checkpointer.last_written = frozen_clock()
    other = make_engine(state(app).settings.database_url)
    try:
        with acting_as(system_principal("task:elsewhere")), make_session_factory(other)() as session:
            audit_event(session, action=AuditAction.READ, event_type="claim.read")
            session.commit()
    finally:
        other.dispose()
    assert checkpointer.pending == 0  # not counted here
    assert checkpointer.maybe_write() is None  # not due yet
    frozen_clock.advance(seconds=61)
    cp = checkpointer.maybe_write()
    assert cp is not None
    with state(app).engine.connect() as conn:
        assert cp.last_event_id == conn.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc())).scalar()
    frozen_clock.advance(seconds=61)
    assert checkpointer.maybe_write() is None  # the head did not move since


def test_checkpoint_if_head_moved_writes_once(app, session):
    ring = app.extensions["claims_security"].cipher.ring
    engine = state(app).engine
    assert checkpoint_if_head_moved(engine, ring, _checkpoint_dir(app), system_clock()) is None  # empty
    audit_event(session, action=AuditAction.READ, event_type="claim.read")
    session.commit()
    assert checkpoint_if_head_moved(engine, ring, _checkpoint_dir(app), system_clock()) is not None
    assert checkpoint_if_head_moved(engine, ring, _checkpoint_dir(app), system_clock()) is None


def test_beat_schedules_the_checkpoint_at_the_configured_interval():
    from claims_server.config import Settings
    from claims_server.scheduler.jobs import registry
    from claims_server.tasks.celery_app import configure_celery

    conf = configure_celery(Settings(AUDIT_CHECKPOINT_SECONDS=45)).conf
    entry = conf.beat_schedule["audit-checkpoint"]
    # Every beat entry runs the job through the scheduler (claims_server.scheduler.run_job).
    assert entry == {
        "task": "claims_server.scheduler.run_job",
        "schedule": 45.0,
        "args": ("audit-checkpoint",),
    }
    assert registry(Settings())["audit-checkpoint"].task == "claims_server.audit.checkpoint"


@pytest.mark.redis
@pytest.mark.worker
def test_the_beat_task_runs_in_a_real_worker(app, session, celery_worker_process):
    from celery import Celery

    audit_event(session, action=AuditAction.READ, event_type="claim.read")
    session.commit()
    client = Celery(broker=celery_worker_process["broker_url"], backend=celery_worker_process["broker_url"])
    send = lambda: client.send_task(  # noqa: E731
        "claims_server.audit.checkpoint", queue=celery_worker_process["queue"]
    ).get(timeout=60)
    first = send()
    assert first["written"] is True
    with state(app).engine.connect() as conn:
        head = conn.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc())).scalar()
    assert first["last_event_id"] == head
    worker_dir = Path(celery_worker_process["log"]).parent / "audit-checkpoints"
    assert len(list(worker_dir.glob("checkpoint-*.json"))) == 1
    assert send() == {"written": False}  # nothing new since
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        assert verify_audit_chain(conn, ring, worker_dir).ok


def test_a_mirror_set_up_later_or_missed_once_is_filled_at_the_next_checkpoint(app, session, tmp_path):
    ring = app.extensions["claims_security"].cipher.ring
    directory, mirror = _checkpoint_dir(app), DirectoryStore(tmp_path / "late-mirror")

    def checkpoint(n: int, to_mirror: object = None) -> None:
        audit_event(session, action=AuditAction.READ, event_type="claim.read", details={"n": n})
        session.commit()
        with state(app).engine.connect() as conn:
            write_checkpoint(conn, ring, directory, system_clock(), mirror=to_mirror)

    def verify() -> list[str]:
        with state(app).engine.connect() as conn:
            return verify_audit_chain(conn, ring, directory, mirror).problems

    checkpoint(1)  # before the mirror was set up
    checkpoint(2)
    assert len(verify()) == 2 and all("missing in the mirror" in p for p in verify())
    checkpoint(3, mirror)  # the first mirrored checkpoint brings the older ones along
    assert verify() == [] and sorted(mirror.names()) == sorted(DirectoryStore(directory).names())
    # A mirror write that failed (the file removed there) is retried at the next checkpoint.
    (mirror.directory / sorted(mirror.names())[-1]).unlink()
    assert len(verify()) == 1
    checkpoint(4, mirror)
    assert verify() == []
