"""Sending claims (``submission.sending``): batch the ready claims and send each batch, or show a dry
run (which locks no claim); every chosen claim is accounted for, and no error of one batch escapes."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from claims_server.claims.services import create_claim_from_json
from claims_server.clearinghouse import services as clearinghouse
from claims_server.models import (
    AuditEvent,
    BatchClaim,
    Claim,
    ClaimState,
    ClearinghouseRoute,
    ControlNumberCounter,
    Coverage,
    EdiFile,
    Payer,
    SubmissionBatch,
)
from claims_server.models.submissions import BatchState
from claims_server.payers.services import create_route
from claims_server.security.principal import acting_as, system_principal
from claims_server.submission.sending import NOT_BATCHED_REASONS, send_ready_claims
from claims_server.submission.services import build_batches
from claims_server.submission.tasks import send_ready
from tests.integration.submission.conftest import recent_claim


def _send(factory, **kwargs: Any):
    with acting_as(system_principal("test:send")):
        return send_ready_claims(factory, **kwargs)


def _cents(claims: list[Claim]) -> int:
    return sum(c.total_charge_cents for c in claims)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def draft_claim(session, ids) -> Claim:
    doc = recent_claim(ids)
    doc["ready"] = False
    claim = create_claim_from_json(session, doc).claim
    session.commit()
    return claim


def held_claim(session, ids) -> Claim:
    """Ready after the scrub, refused by the 837 rules at batching (a pointer to a missing diagnosis)."""
    claim = create_claim_from_json(session, recent_claim(ids)).claim
    claim.service_lines[0].diagnosis_pointers = "1,9"
    session.commit()
    return claim


def test_every_ready_claim_is_batched_and_sent(session, factory, folder_route, make_claims):
    claims = make_claims(3)
    report = _send(factory)
    assert not report.nothing_ready and not report.held and not report.not_ready
    [batch] = report.batches
    assert batch.state == "sent" and batch.claims == 3 and batch.route == folder_route.public_id
    assert batch.total_cents == _cents(claims)
    assert sum(p.claims for p in batch.per_payer) == 3
    doc = report.to_json_dict()
    assert doc["batches"][0]["total_charge"] == _money(_cents(claims))
    assert doc["batches"][0]["id"] == session.scalar(select(SubmissionBatch.public_id))
    # Uploaded to the route's folder, and every claim went out.
    assert len(list(Path(folder_route.settings["outbox"]).glob("*.x12"))) == 1
    session.expire_all()
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.SUBMITTED}
    # Sending again finds nothing: every claim is already out.
    assert _send(factory).nothing_ready


def test_only_the_chosen_ready_claims_go(session, factory, folder_route, ids, make_claims):
    chosen, others = make_claims(2), make_claims(2)
    draft = draft_claim(session, ids)
    report = _send(factory, claim_ids=[c.public_id for c in chosen] + [draft.public_id])
    assert [b.claims for b in report.batches] == [2]
    assert report.not_ready == [(draft.public_id, "draft")]
    session.expire_all()
    batched = set(session.scalars(select(BatchClaim.claim_id)))
    assert batched == {c.id for c in chosen}
    assert {session.get(Claim, c.id).state for c in others} == {ClaimState.READY}


def test_chosen_claims_none_ready_send_nothing(session, factory, ids):
    draft = draft_claim(session, ids)
    report = _send(factory, claim_ids=[draft.public_id])
    assert report.nothing_ready and report.batches == []
    assert report.to_json_dict()["not_ready"] == [{"claim": draft.public_id, "state": "draft"}]


def test_an_unknown_claim_id_is_refused_before_anything_changes(session, factory, make_claims):
    from claims_server.errors import Unprocessable

    claims = make_claims(1)
    with pytest.raises(Unprocessable) as refused:
        _send(factory, claim_ids=[claims[0].public_id, "0" * 32])
    assert refused.value.errors[0]["field"] == "claim_ids[1]"
    assert session.scalar(select(func.count()).select_from(SubmissionBatch)) == 0


def _second_route(session, ids) -> tuple[ClearinghouseRoute, Coverage]:
    """A second route carrying the self-insured patient's payer; a coverage of another payer stays."""
    route = create_route(
        session,
        {
            "name": "Second clearinghouse",
            "transport": "folder",
            "settings": {"outbox": "edi2/outbox", "inbox": "edi2/inbox"},
            "sender_id_qualifier": "ZZ",
            "sender_id": "SECOND01",
            "receiver_id_qualifier": "ZZ",
            "receiver_id": "SECONDCH",
            "application_sender_code": "SECOND01",
            "application_receiver_code": "SECONDCH",
            "usage_indicator": "T",
        },
    )
    payer = session.scalar(select(Payer).where(Payer.public_id == ids["payer"]))
    payer.route_id = route.id
    other = session.scalar(
        select(Coverage)
        .where(Coverage.coverage_order == 1, Coverage.payer_id != payer.id)
        .order_by(Coverage.id)
    )
    session.commit()
    return route, other


def test_one_route_only(session, factory, ids, make_claims):
    second, other = _second_route(session, ids)
    on_second = make_claims(1)  # the self-insured patient's payer: the second route
    doc = recent_claim(ids, patient=other.patient.public_id, coverage=other.public_id)
    on_first = create_claim_from_json(session, doc).claim
    session.commit()
    report = _send(factory, route_id=second.id)
    assert [(b.route, b.claims) for b in report.batches] == [(second.public_id, 1)]
    session.expire_all()
    assert session.get(Claim, on_second[0].id).state is ClaimState.SUBMITTED
    assert session.get(Claim, on_first.id).state is ClaimState.READY


def _snapshot(session) -> dict[str, Any]:
    session.expire_all()
    return {
        "batches": session.scalar(select(func.count()).select_from(SubmissionBatch)),
        "files": session.scalar(select(func.count()).select_from(EdiFile)),
        "counters": sorted(
            session.execute(select(ControlNumberCounter.number_kind, ControlNumberCounter.last_value))
        ),
        "states": sorted((c.id, c.state.value, c.version) for c in session.scalars(select(Claim))),
        "audit": session.scalar(select(func.count()).select_from(AuditEvent)),
    }


def test_a_dry_run_reports_and_changes_nothing(session, factory, folder_route, ids, make_claims):
    claims = make_claims(3)
    held = held_claim(session, ids)
    before = _snapshot(session)
    report = _send(factory, dry_run=True)
    assert _snapshot(session) == before
    [batch] = report.batches
    assert batch.id is None and batch.state == "dry_run"
    assert batch.claims == 3 and batch.total_cents == _cents(claims)
    assert [h.public_id for h in report.held] == [held.public_id]
    doc = report.to_json_dict()
    assert doc["dry_run"] and doc["total_charge"] == _money(_cents(claims))
    assert doc["held"][0]["findings"]
    assert held.patient.last_name not in json.dumps(doc) and ids["patient"] not in json.dumps(doc)
    assert not list(Path(folder_route.settings["outbox"]).glob("*.x12"))
    # The real run then does what the dry run said.
    real = _send(factory)
    assert [(b.claims, b.total_cents) for b in real.batches] == [(3, _cents(claims))]


def test_nothing_ready(session, factory, ids):
    report = _send(factory)
    assert report.nothing_ready and report.batches == [] and report.held == []
    assert report.to_json_dict()["total_charge"] == "0.00"


def test_a_held_claim_is_reported_with_its_findings(session, factory, folder_route, ids, make_claims):
    make_claims(2)
    held = held_claim(session, ids)
    report = _send(factory)
    assert [b.claims for b in report.batches] == [2]
    [entry] = report.to_json_dict()["held"]
    assert entry["claim"] == held.public_id
    assert any(f["severity"] == "error" for f in entry["findings"])
    session.expire_all()
    assert session.get(Claim, held.id).state is ClaimState.DRAFT


def test_an_upload_that_fails_leaves_the_batch_failed_for_a_retry(
    session, factory, folder_route, make_claims
):
    make_claims(1)
    folder_route.settings = {"inbox": "edi/inbox"}  # no outbox: the transport cannot be opened
    session.commit()
    report = _send(factory)
    [batch] = report.batches
    assert batch.state == "failed" and "outbox" in (batch.last_error or "")
    session.expire_all()
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.BATCHED}


def test_the_scheduled_task_sends_everything_and_returns_counts(session, folder_route, make_claims):
    make_claims(2)
    result = send_ready.apply().get()
    assert result == {
        "batches": 1,
        "claims_batched": 2,
        "held": 0,
        "unrouted_claims": 0,
        "batch_states": {"sent": 1},
    }
    assert send_ready.apply().get()["batches"] == 0


def _on_two_routes(session, ids, make_claims) -> tuple[ClearinghouseRoute, Claim, Claim]:
    """(the second route, a ready claim on it, a ready claim on the first route)."""
    second, other = _second_route(session, ids)
    [on_second] = make_claims(1)
    doc = recent_claim(ids, patient=other.patient.public_id, coverage=other.public_id)
    on_first = create_claim_from_json(session, doc).claim
    session.commit()
    return second, on_second, on_first


def test_chosen_ready_claims_left_out_are_named_with_the_reason(
    session, factory, ids, folder_route, make_claims
):
    """Chosen claims the route excludes, or whose payer has no active route, are neither batched,
    held nor "not ready": the report names them with why, and they stay ready."""
    second, on_second, on_first = _on_two_routes(session, ids, make_claims)
    chosen = [on_second.public_id, on_first.public_id]
    for dry_run in (True, False):
        report = _send(factory, claim_ids=chosen, route_id=second.id, dry_run=dry_run)
        assert [b.claims for b in report.batches] == [1] and not report.held and not report.not_ready
        assert report.not_batched == [(on_first.public_id, "other_route")]
        [entry] = report.to_json_dict()["not_batched"]
        assert entry == {
            "claim": on_first.public_id,
            "reason": "other_route",
            "message": NOT_BATCHED_REASONS["other_route"],
        }
    folder_route.active = False  # the first route: its payers' claims cannot go anywhere now
    session.commit()
    report = _send(factory, claim_ids=[on_first.public_id])
    assert report.batches == [] and report.not_batched == [(on_first.public_id, "no_route")]
    assert report.to_json_dict()["not_batched_count"] == 1 and report.unrouted_claims == 1
    session.expire_all()
    assert session.get(Claim, on_first.id).state is ClaimState.READY


# Row locks: PostgreSQL only (SQLite locks the whole database, so no batcher skips a claim);
# deselected in the SQLite pass (tests/conftest.py), never skipped.
@pytest.mark.postgres_pass
def test_a_chosen_claim_another_batcher_holds_is_named_in_use(session, factory, make_claims):
    free, held_elsewhere = make_claims(2)
    other = factory()
    try:
        # Another batcher has taken this claim (the lock a batcher takes) and not committed yet.
        other.execute(
            select(Claim.id).where(Claim.id == held_elsewhere.id).with_for_update(key_share=True)
        ).all()
        # A dry run takes no lock, so none stops it: it shows both going out.
        report = _send(factory, claim_ids=[free.public_id, held_elsewhere.public_id], dry_run=True)
        assert [b.claims for b in report.batches] == [2] and report.not_batched == []
        report = _send(factory, claim_ids=[free.public_id, held_elsewhere.public_id])
        assert [b.claims for b in report.batches] == [1]
        assert report.not_batched == [(held_elsewhere.public_id, "in_use")]
    finally:
        other.rollback()
        other.close()
    session.expire_all()
    assert session.get(Claim, held_elsewhere.id).state is ClaimState.READY


def _waiting_on_a_lock(factory) -> bool:
    with factory() as s:
        return bool(
            s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_a_dry_run_locks_no_claim_so_a_send_at_that_moment_takes_them_all(
    session, factory, folder_route, make_claims
):
    """A scheduled send that starts while someone looks at a dry run batches every ready claim: the
    dry run took no claim lock (on PostgreSQL a locked claim is skipped, silently until the next
    send). The send may wait for the dry run's control-number counters; it never skips a claim."""
    make_claims(3)
    preview = factory()
    batched: list[int] = []
    sender = threading.Thread(
        target=lambda: batched.append(
            _send(factory).claims_batched  # the real send, while the dry run's transaction is open
        )
    )
    try:
        dry = build_batches(preview, dry_run=True)  # a dry run's work, not yet rolled back
        assert dry.claims_batched == 3
        sender.start()
        if preview.get_bind().dialect.name == "postgresql":
            deadline = time.monotonic() + 10
            # Until the send waits for the dry run's counters (or, were claims locked, has skipped them).
            while sender.is_alive() and not _waiting_on_a_lock(factory) and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            time.sleep(0.5)  # SQLite: the send waits for the dry run's write lock
    finally:
        preview.rollback()
        preview.close()
    sender.join(60)
    assert batched == [3]
    session.expire_all()
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.SUBMITTED}


def test_an_upload_that_breaks_with_any_error_keeps_the_batch_for_the_resume(
    session, factory, ids, folder_route, make_claims
):
    """A transport that raises something other than a TransportError: each batch is recorded failed
    (the error's class only: its message may quote data), the next batch is still tried, the report
    says so, and resume_unsent_batches will send them again."""
    _on_two_routes(session, ids, make_claims)

    def broken(route: ClearinghouseRoute):
        raise KeyError("CANARY-Doe")

    report = _send(factory, transport_factory=broken)
    assert len(report.batches) == 2
    for batch in report.batches:
        assert batch.state == "failed"
        assert batch.last_error == "the upload failed (KeyError); resume-unsent-batches sends it again"
    assert "CANARY" not in json.dumps(report.to_json_dict())
    session.expire_all()
    rows = session.scalars(select(SubmissionBatch).order_by(SubmissionBatch.id)).all()
    assert [(r.state, r.attempt_count) for r in rows] == [(BatchState.FAILED, 1)] * 2
    resumable = clearinghouse.batches_to_resume(session, older_than=datetime.now(UTC) + timedelta(hours=1))
    assert resumable == [r.id for r in rows]
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.BATCHED}
