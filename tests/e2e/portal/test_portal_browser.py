"""A patient pays from the statement email's link in a real browser, against ``claims-server serve``.

Debian's chromium through Playwright, on a phone-sized screen: open the link, enter the
birth date, see the statement, pay part of the balance, see the receipt. Screenshots of
each step go to ``$UI_SCREENSHOT_DIR`` or the test's temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from claims_server.models import Patient
from claims_server.security import clock
from claims_server.security.patient_links import create_patient_link
from claims_server.security.principal import acting_as, system_principal
from tests.e2e.conftest import start_server
from tests.e2e.ui.a11y import assert_focus_visible, assert_headings_in_order, assert_inputs_labelled
from tests.integration.delivery.support import issue_statements


def _accessible(page) -> None:
    """Every input labelled, headings in order, focus visible (the workspace's own checks)."""
    assert_inputs_labelled(page)
    assert_headings_in_order(page)
    assert_focus_visible(page)


def test_a_patient_opens_the_link_checks_in_sees_the_statement_and_pays(
    app, session, database_url, browser, tmp_path
):
    from claims_server.app import state

    statement, _other = issue_statements(session, state(app).session_factory)
    patient = session.get(Patient, statement.patient_id)
    with acting_as(system_principal("test:portal")):
        issued = create_patient_link(
            session, patient, created_by_user_id=None, settings=state(app).settings, now=clock.now()
        )
        session.commit()
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with start_server(database_url, tmp_path / "instance") as base:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        try:
            page = context.new_page()
            page.set_default_timeout(15000)
            page.goto(f"{base}/pay/l/{issued.token}")
            assert page.url == f"{base}/pay/verify", "the token left the address bar"
            assert page.get_by_role("heading", level=1).inner_text() == "Confirm it is you"
            _accessible(page)
            page.screenshot(path=str(shots / "portal-1-verify.png"), full_page=True)
            born = patient.birth_date
            page.get_by_label("Month").fill(str(born.month))
            page.get_by_label("Day").fill(str(born.day))
            page.get_by_label("Year").fill(str(born.year - 1))
            page.get_by_role("button", name="Continue").click()
            assert "does not match" in page.get_by_role("alert").inner_text()
            page.get_by_label("Year").fill(str(born.year))
            page.get_by_role("button", name="Continue").click()

            assert page.url == f"{base}/pay/statement"
            assert page.get_by_role("heading", level=1).inner_text() == "Your statement"
            assert "$30.00" in page.locator(".balance").inner_text()
            assert "Deductible" in page.locator("table").inner_text()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
            _accessible(page)
            page.screenshot(path=str(shots / "portal-2-statement.png"), full_page=True)
            with page.expect_download() as download:
                page.get_by_role("link", name="Download the statement (PDF)").click()
            assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

            assert "Test mode: no card is charged." in page.locator("form .test-mode").inner_text()
            page.get_by_label("Amount to pay").fill("45.00")
            page.get_by_role("button", name="Pay", exact=True).click()
            assert "more than you owe" in page.get_by_role("alert").inner_text()
            page.get_by_label("Amount to pay").fill("12.50")
            page.get_by_label("Decline the test payment").check()
            page.get_by_role("button", name="Pay", exact=True).click()
            assert "was not taken" in page.get_by_role("alert").inner_text()
            assert "$30.00" in page.locator(".balance").inner_text()
            page.get_by_label("Approve the test payment").check()
            page.get_by_role("button", name="Pay", exact=True).click()

            assert "/pay/receipts/" in page.url
            assert page.get_by_role("heading", level=1).inner_text().startswith("Thank you")
            summary = page.locator(".summary").inner_text()
            assert "$12.50" in summary and "$17.50" in summary and "sim_ch_" in summary
            assert "no card was charged" in page.locator("main").inner_text()
            page.screenshot(path=str(shots / "portal-3-receipt.png"), full_page=True)
            for url in (page.url, f"{base}/pay/statement"):
                assert issued.token not in url and patient.last_name not in url
        finally:
            context.close()
