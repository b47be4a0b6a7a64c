"""``claims-server serve`` runs the billing day's jobs by itself: nobody runs a command, and the
999, 277CA and 835 the clearinghouse left in a folder route's inbox are picked up and applied."""

from __future__ import annotations

import json
import time
import urllib.request

from sqlalchemy import select

from claims_server.app import state
from claims_server.claims.services import create_claim_from_json
from claims_server.clearinghouse import services as clearinghouse
from claims_server.models import Claim, ClaimState, ClearinghouseRoute
from claims_server.models.operations import ScheduledJob
from claims_server.simulator.service import run_once
from claims_server.submission.services import build_batches
from tests.e2e.conftest import start_server
from tests.integration.claims.support import seed
from tests.integration.submission.conftest import recent_claim


def _wait_for(check, what: str, timeout: float = 240.0, session=None):
    """Alone this takes ~10 s; with CI's two database passes side by side on two cores it has
    taken over 90 s, so the bound is generous and a failure names what each job was doing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    jobs = ""
    if session is not None:  # what each job did meanwhile: the failure says where the time went
        session.expire_all()
        jobs = "; ".join(
            f"{j.name}: runs={j.run_count} outcome={j.last_outcome} started={j.last_started_at} "
            f"finished={j.last_finished_at} lease={j.lease_owner} error={j.last_error}"
            for j in session.scalars(select(ScheduledJob).order_by(ScheduledJob.name))
        )
    raise AssertionError(f"the server's scheduler did not {what} within {timeout:g} s. Jobs: {jobs}")


def test_the_server_polls_the_inbox_and_posts_what_arrived_without_a_command(
    app, session, database_url, tmp_path
):
    factory = state(app).session_factory
    ids = seed(session)
    outbox, inbox = tmp_path / "ch" / "outbox", tmp_path / "ch" / "inbox"
    route = session.scalar(select(ClearinghouseRoute))
    route.settings = {"outbox": str(outbox), "inbox": str(inbox)}
    session.commit()
    claim_ids = [create_claim_from_json(session, recent_claim(ids)).claim.id for _ in range(3)]
    session.commit()
    batching = build_batches(session)
    session.commit()
    (batch_id,) = batching.batch_ids
    sent = clearinghouse.send_batch(
        factory, batch_id, transport_factory=lambda r: clearinghouse.route_transport(r, tmp_path)
    )
    assert sent.state == "sent"
    assert run_once(outbox, inbox).answered  # the 999 and 277CA wait in the inbox
    assert any(inbox.iterdir())

    def states() -> set[ClaimState]:
        session.expire_all()
        return {session.get(Claim, claim_id).state for claim_id in claim_ids}

    # The audit checkpoint every hour: due at once, then not again while the server lives, so
    # it must have run exactly once however long the test takes.
    with start_server(
        database_url,
        tmp_path / "instance",
        workers=2,
        SCHEDULER_INTERVALS="poll-clearinghouse-inboxes=1,audit-checkpoint=3600",
    ) as base:
        _wait_for(lambda: states() == {ClaimState.ACKNOWLEDGED}, "apply the 999 and 277CA", session=session)
        assert run_once(outbox, inbox).remitted  # the payer's 835 arrives later
        _wait_for(
            lambda: states() <= {ClaimState.PAID, ClaimState.PARTIALLY_PAID}, "post the 835 to the ledger"
        )
        with urllib.request.urlopen(base + "/healthz", timeout=5) as answer:
            health = json.load(answer)
    assert health["scheduler"] == "in-process" and health["overdue_jobs"] == []
    session.expire_all()
    poll = session.get(ScheduledJob, "poll-clearinghouse-inboxes")
    assert poll.run_count >= 2 and poll.failure_count == 0 and poll.last_outcome == "ok"
    assert not any(inbox.iterdir())  # every file was taken
    # Two workers ticked, and each job ran once per due time: the hourly audit checkpoint once.
    checkpoint = session.get(ScheduledJob, "audit-checkpoint")
    assert checkpoint.run_count == 1 and checkpoint.lease_owner is None
