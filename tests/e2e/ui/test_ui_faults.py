"""Workspace faults of issue 18 in a real browser: the session dialog shows one button at a time, a
stale save says so, signing in after a time-out returns to the page with the typed text, a GET of
a form's address is a page, patient search by last name alone, and the unknown-payer 835 warning."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from claims_server.models import ClaimState, Patient
from claims_server.security.authn import SESSION_COOKIE
from tests.e2e.ui.a11y import check_page
from tests.integration.remittance.foreign_support import foreign_835
from tests.integration.remittance.support import make_claim, seed_world


def _draft_claim(ui_server) -> str:
    """A new draft claim of the demo practice (editable on the claim screen)."""
    tag = uuid.uuid4().hex[:8].upper()
    with ui_server.session_factory() as session:
        world = seed_world(session)
        claim = make_claim(session, world, f"UIF{tag}", [("99213", 12000)], claim_state=ClaimState.DRAFT)
        return claim.public_id


def _a_patient(ui_server) -> tuple[str, str]:
    with ui_server.session_factory() as session:
        patient = session.scalars(select(Patient).order_by(Patient.id)).first()
        return patient.public_id, patient.last_name


def test_the_session_dialog_shows_exactly_one_button_state(ui_page, ui_server):
    page = ui_page("biller")
    page.clock.install()
    page.goto(ui_server.url("/ui/queues"))
    idle = int(page.locator("body").get_attribute("data-idle-minutes"))
    stay = page.get_by_role("button", name="Stay signed in")
    again = page.locator("#session-sign-in")
    page.clock.fast_forward(f"{idle - 2:02d}:01")
    stay.wait_for(state="visible")
    assert not again.is_visible(), "Sign in again shows while the session is still alive"
    page.clock.fast_forward("02:00")
    again.wait_for(state="visible")
    assert not stay.is_visible(), "Stay signed in shows after the session ended"
    assert again.get_attribute("href").endswith("next=%2Fui%2Fqueues")


def test_a_stale_save_from_a_second_tab_shows_a_message(ui_page, ui_server):
    claim_id = _draft_claim(ui_server)
    first, second = ui_page("biller"), ui_page("biller")
    for tab in (first, second):
        tab.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    first.get_by_label("Referral number").fill("REF-FIRST")
    first.get_by_role("button", name="Save as draft").click()
    first.get_by_text("Saved and scrubbed again.").wait_for()
    second.get_by_label("Referral number").fill("REF-SECOND")
    second.get_by_role("button", name="Save as draft").click()
    alert = second.get_by_role("alert").filter(has_text="changed by someone else")
    alert.wait_for()
    assert "This claim was changed by someone else since you opened it: reload to see the changes" in (
        alert.inner_text()
    )
    assert second.get_by_label("Referral number").input_value() == "REF-SECOND"  # kept, not saved
    second.goto(ui_server.url(f"/ui/claims/{claim_id}"))  # "reload to see the changes"
    assert second.get_by_label("Referral number").input_value() == "REF-FIRST"


def test_signing_in_after_a_time_out_returns_to_the_page_with_the_typed_text(ui_page, ui_server):
    _, last_name = _a_patient(ui_server)
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/patients"))
    page.get_by_label("Last name").fill(last_name)
    # The session ends (as after the idle limit: the server no longer knows it), then the form is sent.
    page.context.clear_cookies(name=SESSION_COOKIE)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/ui/sign-in\?next=/ui/patients$"))
    page.locator("#draft-kept").wait_for()
    user = ui_server.users["biller"]
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_label("Authenticator code").fill(user.code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/patients$"))
    page.locator("#draft-restored").wait_for()
    assert page.get_by_label("Last name").input_value() == last_name
    page.get_by_role("button", name="Search").click()
    page.locator("#patient-results").wait_for()
    assert page.locator("#draft-restored").count() == 0  # restored once, then forgotten


def test_a_get_of_a_form_address_shows_an_html_page(ui_page, ui_server):
    claim_id = _draft_claim(ui_server)
    page = ui_page("biller")
    answer = page.goto(ui_server.url(f"/ui/claims/{claim_id}/void"))
    assert answer.status == 405 and answer.headers["content-type"].startswith("text/html")
    assert page.get_by_role("heading", level=1).inner_text() == "This address is a form's, not a page"
    page.get_by_role("link", name="Back to the page").click()
    page.wait_for_url(f"**/ui/claims/{claim_id}")


def test_patient_search_by_last_name_alone_finds_the_patient(ui_page, ui_server):
    patient_id, last_name = _a_patient(ui_server)
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/patients"))
    page.get_by_label("Last name").fill(last_name.lower())
    page.get_by_role("button", name="Search").click()
    results = page.locator("#patient-results")
    results.wait_for()
    assert results.locator(f'a[href="/ui/patients/{patient_id}"]').count() == 1


def test_an_835_from_an_unknown_payer_warns_and_needs_a_supervisor(ui_page, ui_server, tmp_path):
    upload = tmp_path / "someone-elses.835"
    upload.write_bytes(foreign_835(f"E2EF{uuid.uuid4().hex[:8].upper()}"))
    biller = ui_page("biller")
    biller.goto(ui_server.url("/ui/remittances"))
    biller.get_by_label("835 remittance file").set_input_files(str(upload))
    biller.get_by_role("button", name="Check the file (dry run)").click()
    biller.wait_for_url(re.compile(r"/ui/remittances/files/[^/]+$"))
    warning = biller.locator("#foreign-warning")
    warning.wait_for()
    text = warning.inner_text()
    assert (
        "not one of our payers" in text
        and "not our practice's NPI/TIN" in text
        and "0 of 2 claims matched" in text
    )
    assert "Only a billing supervisor" in biller.locator("#foreign-not-allowed").inner_text()
    assert biller.get_by_role("button", name=re.compile("to the ledger")).count() == 0
    preview_url = biller.url

    supervisor = ui_page("billing_supervisor")
    supervisor.goto(preview_url)
    check_page(supervisor, ui_server, "remittance-foreign")
    supervisor.get_by_role("button", name="Post $70.00 to the ledger").click()
    supervisor.locator("#f-confirm_foreign-error").wait_for()
    supervisor.get_by_label(re.compile("I checked this file")).check()
    supervisor.get_by_role("button", name="Post $70.00 to the ledger").click()
    supervisor.wait_for_url(re.compile(r"/ui/remittances/(?!files)[^/]+$"))
    supervisor.locator("#foreign-warning").wait_for()
