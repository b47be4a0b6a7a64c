"""Work items about a remittance's money show that remittance's payer and amount.

A PLB reconciliation item (queue ``reconciliation``: its remittance and adjustment, the claim
when the reference names one) and a remittance held as a whole (queue ``possible_duplicate``:
its remittance, no claim payment) have no claim payment to read the payer from: the list
reads the payer from the item's own remittance, and the amount from the PLB (its size) or the
held payment (BPR02). Real 835s are posted; amounts are computed by hand from them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from claims_server.models import Payer, ProviderAdjustment, Remittance, WorkItem
from claims_server.models.workqueue import WorkQueue
from claims_server.remittance.services import receive_and_post
from claims_server.workqueue.services import (
    WorkItemFilters,
    find_work_items,
    item_facts,
    item_to_json,
    list_work_items,
    queue_counts,
)
from tests.integration.remittance.support import Clp, Svc, World, build_835, make_claim, seed_world

BASE = "/api/v1/workqueue/items"


@pytest.fixture
def world(session) -> World:
    return seed_world(session)


@pytest.fixture
def factory(app):
    from claims_server.app import state

    return state(app).session_factory


def _paid(claim, charge: int, paid: int, ccn: str) -> Clp:
    (lcn,) = (line.line_control_number for line in claim.service_lines)
    cas = [("CO", "45", charge - paid)] if charge - paid else []
    return Clp(
        claim.patient_control_number,
        "1",
        charge,
        paid,
        0,
        lines=[Svc("99213", charge, paid, cas, lcn=lcn)],
        payer_claim_number=ccn,
    )


def _post(factory, content: bytes) -> None:
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error


def _payer(session, world: World, code: str) -> Payer:
    return session.get(Payer, world.payers[code])


def _remittance(session, trace: str) -> Remittance:
    return session.scalar(select(Remittance).where(Remittance.trace_number == trace))


def _item_of_plb(session, rem: Remittance, reason: str) -> WorkItem:
    return session.scalar(
        select(WorkItem)
        .join(ProviderAdjustment, ProviderAdjustment.id == WorkItem.provider_adjustment_id)
        .where(ProviderAdjustment.remittance_id == rem.id, ProviderAdjustment.reason_code == reason)
    )


@pytest.fixture
def posted(session, world, factory):
    """Three 835s:

    * ACME (trace WQ-A1) pays claim A (100.00, paid 90.00) with a WO recoupment of 12.00 naming
      claim A: BPR02 = 90.00 - 12.00 = 78.00. Claim A's open A/R after it: 0.00.
    * Medicare (WQ-M1) pays claim M (60.00 in full) with L6 interest -2.50 naming no claim of
      ours and a WO of 7.00 naming claim A (ACME's claim; the Medicare PLB is Medicare's money):
      BPR02 = 60.00 + 2.50 - 7.00 = 55.50.
    * ACME re-issues WQ-A1 as WQ-A2 (same claim, same payer claim number, the same PLB): held
      as a whole, one possible-duplicate item for the remittance, 78.00 waiting; its WO opens a
      reconciliation item of its own.
    """
    claim_a = make_claim(session, world, "PCN-WQA", [("99213", 10000)])
    claim_m = make_claim(session, world, "PCN-WQM", [("99213", 6000)], coverage=world.with_secondary)
    first = build_835(
        [_paid(claim_a, 10000, 9000, "ICN-A")],
        plb=[("WO", 1200)],
        plb_references=["PCN-WQA"],
        trace="WQ-A1",
        control=1,
    )
    _post(factory, first)
    _post(
        factory,
        build_835(
            [_paid(claim_m, 6000, 6000, "ICN-M")],
            payer="DEMOMCRB",
            plb=[("L6", -250), ("WO", 700)],
            plb_references=["INT20260110", "PCN-WQA"],
            trace="WQ-M1",
            control=2,
        ),
    )
    reissued = build_835(
        [_paid(claim_a, 10000, 9000, "ICN-A")],
        plb=[("WO", 1200)],
        plb_references=["PCN-WQA"],
        trace="WQ-A2",
        control=3,
    )
    _post(factory, reissued)
    session.expire_all()
    rem_a1, rem_m1, rem_a2 = (_remittance(session, t) for t in ("WQ-A1", "WQ-M1", "WQ-A2"))
    assert rem_a2.state.value == "held" and rem_a2.payment_amount_cents == 7800
    held = session.scalar(
        select(WorkItem).where(
            WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE,
            WorkItem.remittance_id == rem_a2.id,
            WorkItem.claim_payment_id.is_(None),
        )
    )
    assert held is not None and held.claim_id is None
    return {
        "claim_a": claim_a,
        "wo_acme": _item_of_plb(session, rem_a1, "WO"),
        "wo_acme_reissued": _item_of_plb(session, rem_a2, "WO"),
        "l6_medicare": _item_of_plb(session, rem_m1, "L6"),
        "wo_medicare": _item_of_plb(session, rem_m1, "WO"),
        "held": held,
        "acme": _payer(session, world, "DEMOACME"),
        "medicare": _payer(session, world, "DEMOMCRB"),
    }


def test_the_list_service_reads_payer_and_amount_from_the_items_remittance(session, posted):
    wo_acme, l6, wo_mcr, held = (posted[k] for k in ("wo_acme", "l6_medicare", "wo_medicare", "held"))
    wo_again = posted["wo_acme_reissued"]
    acme, medicare, claim_a = posted["acme"], posted["medicare"], posted["claim_a"]
    # The items as posting left them: no claim payment; the claim only where the PLB names one.
    plb_items = (wo_acme, wo_again, l6, wo_mcr)
    assert all(i.queue is WorkQueue.RECONCILIATION for i in plb_items)
    assert all(i.claim_payment_id is None and i.remittance_id is not None for i in plb_items)
    assert [i.claim_id for i in plb_items] == [claim_a.id, claim_a.id, None, claim_a.id]

    facts = item_facts(session, [*plb_items, held])
    # WO 12.00 on ACME's remittances (not claim A's open A/R, 0.00); L6 2.50 added by Medicare
    # (it names no claim: it had no payer before); WO 7.00 by Medicare on ACME's claim A:
    # Medicare's money; the held re-issue: ACME, its 78.00 payment.
    assert facts == {
        wo_acme.id: (acme.id, 1200),
        wo_again.id: (acme.id, 1200),
        l6.id: (medicare.id, 250),
        wo_mcr.id: (medicare.id, 700),
        held.id: (acme.id, 7800),
    }

    def listed(**kw) -> list[int]:
        return sorted(i.id for i in find_work_items(session, WorkItemFilters(**kw)))

    assert listed(queue=WorkQueue.RECONCILIATION, payer_id=acme.id) == sorted([wo_acme.id, wo_again.id])
    assert listed(queue=WorkQueue.RECONCILIATION, payer_id=medicare.id) == sorted([l6.id, wo_mcr.id])
    assert listed(queue=WorkQueue.POSSIBLE_DUPLICATE, payer_id=acme.id) == [held.id]
    assert listed(queue=WorkQueue.POSSIBLE_DUPLICATE, payer_id=medicare.id) == []
    # Amount filters see the PLB's size and the held payment.
    assert listed(queue=WorkQueue.RECONCILIATION, min_amount_cents=700) == sorted(
        [wo_acme.id, wo_again.id, wo_mcr.id]
    )
    assert listed(queue=WorkQueue.RECONCILIATION, min_amount_cents=701) == sorted([wo_acme.id, wo_again.id])
    assert listed(queue=WorkQueue.RECONCILIATION, max_amount_cents=250) == [l6.id]
    assert listed(queue=WorkQueue.POSSIBLE_DUPLICATE, min_amount_cents=7800) == [held.id]
    assert listed(queue=WorkQueue.POSSIBLE_DUPLICATE, min_amount_cents=7801) == []
    page = list_work_items(session, WorkItemFilters(payer_id=medicare.id), limit=10, cursor=None)
    assert sorted(i.id for i in page.items) == sorted([l6.id, wo_mcr.id])
    # The JSON of an item and the queue totals use the same figures.
    body = item_to_json(wo_mcr, facts[wo_mcr.id])
    assert (body["payer"], body["amount"], body["claim"]) == (medicare.public_id, "7.00", claim_a.public_id)
    totals = {c.queue: c.amount_cents for c in queue_counts(session)}
    assert totals[WorkQueue.RECONCILIATION] == 1200 + 1200 + 250 + 700
    assert totals[WorkQueue.POSSIBLE_DUPLICATE] == 7800


def test_the_api_filters_remittance_items_by_payer(session, posted, api_client):
    acme, medicare, claim_a = posted["acme"], posted["medicare"], posted["claim_a"]
    client = api_client("biller")

    def items(query: str) -> dict[str, tuple[str | None, str | None, str | None]]:
        answer = client.get(f"{BASE}?{query}")
        assert answer.status_code == 200, answer.get_json()
        return {i["id"]: (i["payer"], i["amount"], i["claim"]) for i in answer.get_json()["items"]}

    wo_acme, wo_again = posted["wo_acme"].public_id, posted["wo_acme_reissued"].public_id
    l6, wo_mcr, held = (posted[k].public_id for k in ("l6_medicare", "wo_medicare", "held"))
    assert items(f"queue=reconciliation&payer={acme.public_id}") == {
        wo_acme: (acme.public_id, "12.00", claim_a.public_id),
        wo_again: (acme.public_id, "12.00", claim_a.public_id),
    }
    assert items(f"queue=reconciliation&payer={medicare.public_id}") == {
        l6: (medicare.public_id, "2.50", None),
        wo_mcr: (medicare.public_id, "7.00", claim_a.public_id),
    }
    assert items(f"queue=possible_duplicate&payer={acme.public_id}") == {
        held: (acme.public_id, "78.00", None)
    }
    assert items(f"queue=possible_duplicate&payer={medicare.public_id}") == {}
    assert set(items(f"payer={medicare.public_id}")) >= {l6, wo_mcr}
    assert set(items("queue=reconciliation&min_amount=7.00")) == {wo_acme, wo_again, wo_mcr}
    one = client.get(f"{BASE}/{l6}").get_json()
    assert (one["payer"], one["amount"]) == (medicare.public_id, "2.50")
    counts = {c["queue"]: c["amount"] for c in client.get("/api/v1/workqueue/queues").get_json()["queues"]}
    assert counts["reconciliation"] == "33.50" and counts["possible_duplicate"] == "78.00"
