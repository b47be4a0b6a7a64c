"""Ready to send in a real browser: keyboard only, select all, send, land on the batch; no CSP violation."""

from __future__ import annotations

from sqlalchemy import select

from claims_server.claims.services import create_claim_from_json
from claims_server.models import Claim, ClaimState
from claims_server.security.principal import acting_as, system_principal
from tests.e2e.ui.a11y import check_page
from tests.integration.claims.support import seed
from tests.integration.submission.conftest import recent_claim

_LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective));
"""


def test_a_biller_sends_the_ready_claims_with_the_keyboard(ui_page, ui_server):
    with acting_as(system_principal("test:ui")), ui_server.session_factory() as session:
        ids = seed(session)  # the demo practice is there: this only reads its ids
        created = [create_claim_from_json(session, recent_claim(ids)).claim for _ in range(2)]
        session.commit()
        numbers = [c.patient_control_number for c in created]
        ready = session.scalars(
            select(Claim.patient_control_number).where(Claim.state == ClaimState.READY)
        ).all()
    page = ui_page("biller")
    page.add_init_script(_LISTEN)
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Ready to send").click()
    page.wait_for_url("**/ui/send")
    check_page(page, ui_server, "ready-to-send")
    for number in numbers:
        assert page.get_by_label(f"Select claim {number}").is_visible()
    # Keyboard only: Space ticks "select all", the live line counts the selection, Enter sends.
    page.get_by_label("Select all ready claims listed").focus()
    page.keyboard.press("Space")
    assert page.locator("#selection").inner_text().startswith(f"{len(ready)} selected, $")
    page.get_by_role("button", name="Send selected").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/batches/*")
    assert "Sent" in page.get_by_role("status").inner_text()
    assert page.locator("h1 .badge").inner_text() == "sent"
    for number in numbers:
        assert page.get_by_role("link", name=number).count() == 1
    check_page(page, ui_server, "batch")
    assert page.evaluate("() => window.__cspViolations") == []
