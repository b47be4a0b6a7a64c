"""The batcher's bulk writes: ``mark_batched_many`` (one guarded UPDATE per chunk, ORM version
kept in step), ``audit_events_bulk`` (one executemany INSERT that ``audit verify`` accepts) and
the few statements a whole interchange costs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, select, update

from claims_server.app import state as app_state
from claims_server.claims import state
from claims_server.errors import Conflict
from claims_server.models import AuditAction, AuditEvent, BatchClaim, Claim, ClaimState
from claims_server.security.audit import audit_event, audit_events_bulk
from claims_server.security.checkpoints import verify_audit_chain
from claims_server.submission.services import build_batches


def _verify(app):
    ring = app.extensions["claims_security"].cipher.ring
    with app_state(app).engine.connect() as conn:
        return verify_audit_chain(conn, ring, None)


def _events(session, event_type: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)))


def test_mark_batched_many_moves_bumps_versions_and_audits_each_claim(app, session, make_claims):
    claims = make_claims(5)
    before = {c.id: c.version for c in claims}
    state.mark_batched_many(session, claims, details={"batch": "b" * 32})
    # The objects hold the new committed values: nothing is left dirty for the next flush.
    assert all(c.state is ClaimState.BATCHED for c in claims)
    assert not any(c in session.dirty for c in claims)
    session.commit()
    rows = dict(session.execute(select(Claim.id, Claim.version).where(Claim.id.in_(before))).all())
    assert rows == {cid: version + 1 for cid, version in before.items()}
    assert {c.id: c.version for c in claims} == rows
    # The ORM's optimistic lock still agrees: a later single transition flushes cleanly.
    state.mark_submitted(session, claims[0])
    session.commit()
    assert claims[0].version == rows[claims[0].id] + 1
    audited = _events(session, "claim.batched")
    assert sorted(e.entity_id for e in audited) == sorted(c.public_id for c in claims)
    assert all(e.details["from"] == "ready" and e.details["to"] == "batched" for e in audited)
    assert all(e.details["batch"] == "b" * 32 for e in audited)
    assert {e.patient_id for e in audited} == {c.patient_id for c in claims}
    report = _verify(app)
    assert report.ok, report.problems


def test_a_claim_not_ready_refuses_the_whole_move_before_anything_changes(session, make_claims):
    claims = make_claims(3)
    state.mark_batched(session, claims[1])
    session.commit()
    audit_count = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(Conflict) as caught:
        state.mark_batched_many(session, claims)
    assert caught.value.extra["current_state"] == "batched"
    session.rollback()
    assert [session.get(Claim, c.id).state for c in claims] == [
        ClaimState.READY,
        ClaimState.BATCHED,
        ClaimState.READY,
    ]
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_count


def test_a_row_changed_by_another_transaction_is_a_conflict_and_nothing_moves(app, session, make_claims):
    claims = make_claims(4)
    stale = claims[2]
    # Another transaction edits one claim after this session loaded it (version 1 -> 2).
    with app_state(app).session_factory() as other:
        other.execute(update(Claim).where(Claim.id == stale.id).values(version=Claim.version + 1))
        other.commit()
    with pytest.raises(Conflict) as caught:
        state.mark_batched_many(session, claims)
    assert caught.value.extra["stale_claims"] == [stale.public_id]
    session.rollback()
    states = session.scalars(select(Claim.state).where(Claim.id.in_([c.id for c in claims]))).all()
    assert set(states) == {ClaimState.READY}
    assert _events(session, "claim.batched") == []


def test_duplicate_claims_are_refused(session, make_claims):
    (claim,) = make_claims(1)
    with pytest.raises(ValueError, match="twice"):
        state.mark_batched_many(session, [claim, claim])


def test_bulk_audit_extends_the_chain_between_single_appends(app, session):
    first = audit_event(session, action=AuditAction.READ, event_type="test.before", entity_id="a" * 32)
    # ``first`` is not flushed yet: the bulk append must flush it so it keeps the lower id.
    count = audit_events_bulk(
        session,
        [
            {
                "action": AuditAction.UPDATE,
                "event_type": "test.bulk",
                "entity_id": f"{n:032x}",
                "details": {"n": n},
            }
            for n in range(25)
        ],
    )
    last = audit_event(session, action=AuditAction.READ, event_type="test.after", entity_id="c" * 32)
    session.commit()
    assert count == 25
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    ours = [r for r in rows if r.event_type.startswith("test.")]
    assert [r.event_type for r in ours] == ["test.before"] + ["test.bulk"] * 25 + ["test.after"]
    assert [r.details["n"] for r in ours[1:-1]] == list(range(25))
    assert ours[1].prev_hash == first.hash
    assert last.prev_hash == ours[-2].hash
    assert all(r.details["actor"] == "system" for r in ours[1:-1])
    report = _verify(app)
    assert report.ok, report.problems
    assert report.events == len(rows)


def test_cli_audit_verify_passes_after_a_bulk_append(app, session, make_claims, monkeypatch):
    from claims_server.cli import main

    make_claims(6)
    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 6
    settings = app_state(app).settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSTANCE_PATH", settings.INSTANCE_PATH)
    verdict = CliRunner().invoke(main, ["audit", "verify"])
    assert verdict.exit_code == 0, verdict.output
    assert ": ok" in verdict.output


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            {"action": AuditAction.UPDATE, "event_type": "x", "patient": 1},
            "unknown audit event keys: patient",
        ),
        ({"action": AuditAction.UPDATE, "event_type": "x", "details": {"paid": 1.5}}, "only text"),
    ],
)
def test_bulk_audit_refuses_bad_events_before_writing(session, event, error):
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(TypeError, match=error):
        audit_events_bulk(session, [{"action": AuditAction.READ, "event_type": "ok"}, event])
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_batching_an_interchange_costs_statements_per_chunk_not_per_claim(app, session, make_claims):
    claims = make_claims(40)
    statements: list[str] = []
    engine = app_state(app).engine

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = build_batches(session)
        session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.claims_batched == 40
    # 40 claims: a fixed number of statements (selects per relation, a few inserts and
    # updates). Per-claim writes would add well over 100.
    assert len(statements) < 60, statements
    assert statements.count("UPDATE") < 10
    positions = session.scalars(select(BatchClaim.position).order_by(BatchClaim.position)).all()
    assert positions == list(range(1, 41))
    assert {session.get(Claim, c.id).state for c in claims} == {ClaimState.BATCHED}
    assert len(_events(session, "claim.batched")) == 40


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_paused_during_a_run_and_restored_after(app, session, make_claims, enabled_before):
    import gc

    make_claims(2)
    seen: list[bool] = []
    engine = app_state(app).engine

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(gc.isenabled())

    (gc.enable if enabled_before else gc.disable)()
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert build_batches(session).claims_batched == 2
        after = gc.isenabled()
    finally:
        event.remove(engine, "before_cursor_execute", record)
        gc.enable()
    assert seen and not any(seen)
    assert after is enabled_before


def test_a_pending_phi_change_is_audited_before_the_bulk_events(app, session, ids):
    from claims_server.models import Patient

    patient = session.scalar(select(Patient).where(Patient.public_id == ids["patient"]))
    patient.middle_name = "Q"  # PHI: its flush appends a patients.update event
    audit_events_bulk(
        session,
        [
            {"action": AuditAction.UPDATE, "event_type": "test.bulk", "entity_id": f"{n:032x}"}
            for n in range(3)
        ],
    )
    session.commit()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    kinds = [r.event_type for r in rows if r.event_type in ("patients.update", "test.bulk")]
    assert kinds == ["patients.update", "test.bulk", "test.bulk", "test.bulk"]
    report = _verify(app)
    assert report.ok, report.problems
