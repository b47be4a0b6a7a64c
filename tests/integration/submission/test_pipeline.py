"""The whole path without a worker: batch → upload → simulator → poll → 999 + 277CA → states."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from claims_server.claims.services import create_claim_from_json
from claims_server.clearinghouse import services as ch
from claims_server.clearinghouse.transport import TransportError
from claims_server.models import (
    Ack999Result,
    ClaimState,
    ClaimStatusEvent,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    FileDirection,
    WorkItem,
)
from claims_server.models.submissions import BatchState
from claims_server.simulator.service import run_once
from claims_server.submission.services import build_batches
from tests.integration.submission.conftest import recent_claim
from tests.integration.submission.sftp_server import interchange_numbers


def _transport(base: Path):
    return lambda route: ch.route_transport(route, base)


def _prior_auth_claim(session, ids):
    """Clean for our scrubber, but the simulated payer wants an authorization for an MRI."""
    doc = recent_claim(ids)
    doc["lines"] = [dict(doc["lines"][0], procedure="72148", charge="900.00")]
    return create_claim_from_json(session, doc).claim


def _run_path(session, factory, route, make_claims, ids, transport_factory, outbox: Path, inbox: Path):
    good = make_claims(3)
    planted = _prior_auth_claim(session, ids)
    session.commit()
    batching = build_batches(session)
    session.commit()
    assert batching.claims_batched == 4 and len(batching.batch_ids) == 1
    batch_id = batching.batch_ids[0]
    sent = ch.send_batch(factory, batch_id, transport_factory=transport_factory)
    assert sent.state == "sent" and len(sent.uploaded) == 1
    simulated = run_once(outbox, inbox)
    assert simulated.answered[0]["acknowledgment"] == "999"
    assert simulated.answered[0]["rejected"] == 1
    polled = ch.poll_inbox(factory, route.id, transport_factory=transport_factory)
    kinds = [f.kind for f in polled.files]
    assert kinds == ["999", "277CA"]  # the 999 is applied first, whatever the names
    session.expire_all()
    for claim in good:
        session.refresh(claim)
        assert claim.state is ClaimState.ACKNOWLEDGED
        assert claim.payer_claim_control_number.startswith("SIM")
    session.refresh(planted)
    assert planted.state is ClaimState.REJECTED
    item = session.scalar(select(WorkItem).where(WorkItem.claim_id == planted.id))
    assert item.queue.value == "rejected" and "A7:460" in item.reason_codes
    assert "authorization" in item.recommended_action
    events = session.scalars(select(ClaimStatusEvent).where(ClaimStatusEvent.claim_id == planted.id)).all()
    assert {(e.category_code, e.status_code) for e in events} == {("A7", "21"), ("A7", "460")}
    assert all("invalid" in e.free_text for e in events)
    batch = session.get(ch.SubmissionBatch, batch_id)
    assert batch.state is BatchState.ACCEPTED
    assert session.scalar(select(func.count()).select_from(Ack999Result)) == 2  # AK2 row + AK9 row
    # The 835 comes on the simulator's next pass and is posted to the ledger as it arrives.
    later = run_once(outbox, inbox)
    assert later.remitted[0]["claims"] == 3
    polled = ch.poll_inbox(factory, route.id, transport_factory=transport_factory)
    assert [f.kind for f in polled.files] == ["835"]
    remit = session.scalar(select(EdiFile).where(EdiFile.kind == EdiFileKind.REMITTANCE_835))
    assert remit.error_summary["status"] == "posted"
    assert remit.error_summary["claims_parsed"] == remit.error_summary["claims_posted"] == 3
    session.expire_all()
    for claim in good:
        session.refresh(claim)
        assert claim.state in (ClaimState.PAID, ClaimState.PARTIALLY_PAID)
    return batch


def test_whole_path_over_the_folder_adapter(session, factory, folder_route, make_claims, ids, tmp_path):
    outbox, inbox = Path(folder_route.settings["outbox"]), Path(folder_route.settings["inbox"])
    _run_path(session, factory, folder_route, make_claims, ids, _transport(tmp_path), outbox, inbox)
    assert len(interchange_numbers(outbox)) == 1


def test_whole_path_over_a_real_sftp_server(
    session, factory, sftp_route, sftp_server, make_claims, ids, tmp_path
):
    batch = _run_path(
        session,
        factory,
        sftp_route,
        make_claims,
        ids,
        _transport(tmp_path),
        sftp_server.outbound,
        sftp_server.inbound,
    )
    assert interchange_numbers(sftp_server.outbound) == [
        bytes(f.content).decode()[90:99]
        for f in session.scalars(select(EdiFile).where(EdiFile.batch_id == batch.id))
    ]
    assert not list(sftp_server.inbound.iterdir())  # polled files are removed once stored


def test_sftp_password_authentication(
    session, factory, sftp_route, sftp_server, make_claims, monkeypatch, tmp_path
):
    from tests.integration.submission.sftp_server import PASSWORD

    monkeypatch.setenv("CH_TEST_PASSWORD", PASSWORD)
    sftp_route.settings = sftp_server.route_settings(password_env="CH_TEST_PASSWORD")
    session.commit()
    make_claims(1)
    batch_id = build_batches(session).batch_ids[0]
    session.commit()
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"


def test_failed_upload_is_recorded_failed_and_never_sent(
    session, factory, sftp_route, sftp_server, make_claims, tmp_path
):
    claims = make_claims(2)
    batch_id = build_batches(session).batch_ids[0]
    session.commit()
    sftp_server.refuse_logins.set()
    for attempt in (1, 2):
        with pytest.raises(TransportError):
            ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
        session.expire_all()
        batch = session.get(ch.SubmissionBatch, batch_id)
        assert batch.state is BatchState.FAILED and batch.attempt_count == attempt
        assert "connect" in batch.last_error
        assert all(session.get(type(c), c.id).state is ClaimState.BATCHED for c in claims)
    assert interchange_numbers(sftp_server.outbound) == []
    sftp_server.refuse_logins.clear()
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"
    session.expire_all()
    assert all(session.get(type(c), c.id).state is ClaimState.SUBMITTED for c in claims)
    # A second send of a sent batch uploads nothing.
    again = ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    assert again.already_sent and len(interchange_numbers(sftp_server.outbound)) == 1


def test_duplicate_inbox_files_are_processed_once(session, factory, folder_route, make_claims, tmp_path):
    make_claims(2)
    batch_id = build_batches(session).batch_ids[0]
    session.commit()
    ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    inbox = Path(folder_route.settings["inbox"])
    run_once(folder_route.settings["outbox"], inbox)
    copies = {p.name: p.read_bytes() for p in inbox.iterdir()}
    first = ch.poll_inbox(factory, folder_route.id, transport_factory=_transport(tmp_path))
    assert not any(f.duplicate for f in first.files)
    for name, content in copies.items():  # the clearinghouse delivers everything again
        (inbox / f"again-{name}").write_bytes(content)
    second = ch.poll_inbox(factory, folder_route.id, transport_factory=_transport(tmp_path))
    assert len(second.files) == len(copies) and all(f.duplicate for f in second.files)
    inbound = session.scalars(select(EdiFile).where(EdiFile.direction == FileDirection.INBOUND)).all()
    assert len(inbound) == len(copies) and all(f.status is EdiFileStatus.PROCESSED for f in inbound)
    assert session.scalar(select(func.count()).select_from(ClaimStatusEvent)) == 2
