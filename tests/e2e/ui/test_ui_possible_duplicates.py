"""The possible-duplicate queue in a real browser: a re-issued 835 (same claim, new trace number)
is held; the work-queue page shows it beside the adjudication already posted; a biller sees no
buttons, a supervisor rejects it and its money leaves unapplied payments."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from claims_server.ledger.services import UNAPPLIED_PAYMENTS, balance
from claims_server.models import ClaimPayment, Remittance, RemittanceState
from claims_server.models.remittance import AdjudicationState
from claims_server.remittance.services import receive_and_post
from claims_server.security.principal import acting_as, system_principal
from tests.e2e.ui.a11y import check_page
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world


def _835(pcn: str, trace: str, control: int) -> bytes:
    """99213 120.00 paid 90.00 (CO-45 10.00, PR-2 20.00), 85025 30.00 paid 25.00 (CO-45 5.00)."""
    clp = Clp(
        pcn,
        "1",
        15000,
        11500,
        2000,
        lines=[
            Svc("99213", 12000, 9000, [("CO", "45", 1000), ("PR", "2", 2000)]),
            Svc("85025", 3000, 2500, [("CO", "45", 500)]),
        ],
        payer_claim_number=f"ICN{control}",
    )
    return build_835([clp], trace=trace, control=control)


def test_a_supervisor_rejects_a_reissued_835_seen_beside_the_first(ui_page, ui_server):
    tag = uuid.uuid4().hex[:8].upper()
    control = int(tag, 16) % 900_000_000 + 1
    with acting_as(system_principal("test:ui")):
        with ui_server.session_factory() as session:
            world = seed_world(session)
            make_claim(session, world, f"UIDUP{tag}", [("99213", 12000), ("85025", 3000)])
        first = receive_and_post(ui_server.session_factory, _835(f"UIDUP{tag}", f"E2EA{tag}", control))
        again = receive_and_post(ui_server.session_factory, _835(f"UIDUP{tag}", f"E2EB{tag}", control + 1))
    assert first.status == again.status == "posted" and again.summary()["held_remittances"] == 1

    biller = ui_page("biller")
    biller.goto(ui_server.url("/ui/queues?queue=possible_duplicate"))
    card = biller.locator(f'section[data-held]:has-text("E2EB{tag}")')
    assert card.count() == 1 and card.get_by_role("button").count() == 0
    assert "A billing supervisor posts or rejects it." in card.inner_text()

    page = ui_page("billing_supervisor")
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Work queues").click()
    page.get_by_role("link", name="Possible duplicates").click()
    page.wait_for_url("**/ui/queues?queue=possible_duplicate")
    card = page.locator(f'section[data-held]:has-text("E2EB{tag}")')
    row = card.locator("tbody tr", has_text=f"UIDUP{tag}")
    assert "$115.00" in row.inner_text() and f"E2EA{tag}" in row.inner_text()  # the current one's trace
    check_page(page, ui_server, "queues-possible-duplicate")
    card.get_by_role("button", name=f"Reject remittance trace E2EB{tag}").click()
    page.wait_for_url("**/ui/queues?queue=possible_duplicate")
    assert "rejected" in page.get_by_role("status").inner_text()
    assert page.locator(f'section[data-held]:has-text("E2EB{tag}")').count() == 0

    with ui_server.session_factory() as session:
        held = session.scalar(select(Remittance).where(Remittance.trace_number == f"E2EB{tag}"))
        assert held.state is RemittanceState.POSTED
        (repeat,) = session.scalars(select(ClaimPayment).where(ClaimPayment.remittance_id == held.id)).all()
        assert repeat.adjudication_state is AdjudicationState.REJECTED
        assert repeat.decided_by == ui_server.users["billing_supervisor"].username
        assert balance(session, [UNAPPLIED_PAYMENTS], remittance_id=held.id) == 0
