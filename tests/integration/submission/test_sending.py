"""Sending claims (``submission.sending``): batch the ready claims and send each batch, or show a dry run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.claims.services import create_claim_from_json
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
from claims_server.payers.services import create_route
from claims_server.security.principal import acting_as, system_principal
from claims_server.submission.sending import send_ready_claims
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
