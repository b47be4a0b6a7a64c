"""Issue 16's billing day in a real browser, on an office set up through the API from an empty
database: the biller finds the patient and keys a two-line claim with the KEYBOARD ONLY (typing,
Tab, arrows and Enter; no click after signing in), one code picked from the suggestions, the
charges left to the fee schedule, and saves it ready; the claim page shows it ready with its two
lines and the total. Then the biller sends it from the Ready to send screen (still by keyboard),
the simulated clearinghouse answers (a ``claims-server simulator run --watch`` process on the
route's folders), and with no command from anyone the server's own scheduler picks up the 999,
the 277CA and the 835: the claim shows paid and the ledger balances."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from sqlalchemy import func, select

from claims_server.models import Adjustment, Claim, ClaimPayment, ClaimState, LinePayment, Posting
from tests.e2e.conftest import sign_in
from tests.e2e.ui.a11y import check_page
from tests.services import running_process

MAX_TABS = 40


def _focused(page: Any) -> dict[str, str]:
    return page.evaluate(
        "() => ({id: document.activeElement.id || '', text: (document.activeElement.textContent || '').trim()})"
    )


def _tab_to(page: Any, *, element_id: str | None = None, text: str | None = None) -> None:
    """Press Tab until the element with ``element_id`` (or a button reading ``text``) has focus."""
    for _ in range(MAX_TABS):
        focus = _focused(page)
        if (element_id and focus["id"] == element_id) or (text and focus["text"] == text):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {element_id or text!r}; stuck at {_focused(page)}")


def _simulator(instance: Any) -> subprocess.Popen[bytes]:
    """The clearinghouse-and-payer simulator answering on the route's folders, every second."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claims_server",
            "simulator",
            "run",
            "--watch",
            "--interval",
            "1",
            "--outbox",
            str(instance / "edi" / "outbox"),
            "--inbox",
            str(instance / "edi" / "inbox"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_biller_keys_a_two_line_claim_with_the_keyboard_only_sends_it_and_it_gets_paid(
    browser, empty_office
):
    office = empty_office
    server = office.server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        sign_in(page, server, server.users["biller"])
        assert "/ui/sign-in" not in page.url, page.content()[:2000]

        # The screen passes the workspace's accessibility checks (labels, headings, visible focus).
        page.goto(server.url(f"/ui/claims/new?patient={office.ids['patient']}"))
        check_page(page, server, "charge-entry")

        # From here on: the keyboard only.
        keys = page.keyboard
        page.goto(server.url("/ui/claims/new"))
        assert _focused(page)["id"] == "f-account_number"
        keys.type(office.patient_account)
        with page.expect_navigation():
            keys.press("Enter")  # one match: the screen opens for the patient
        assert _focused(page)["id"] == "f-dx-0", "the screen starts at the first diagnosis"
        assert (
            page.locator("#f-coverage option:checked").inner_text().startswith("Primary: Prairie Health Plan")
        )
        keys.type("E11.9")
        page.locator("#d-dx-0").get_by_text("Type 2 diabetes mellitus without complications").wait_for()
        keys.press("Tab")
        keys.type("I10")
        keys.press("Tab")
        _tab_to(page, element_id="f-line-0-procedure")
        keys.type("99213")
        keys.press("Tab")  # modifiers
        keys.press("Tab")  # units (1)
        keys.press("Tab")
        assert _focused(page)["id"] == "f-line-0-diagnosis_pointers"
        keys.type("1 2")
        keys.press("Enter")  # Enter in the last line adds one
        assert _focused(page)["id"] == "f-line-1-procedure"
        keys.type("venipunc")  # by words: the practice's own label of 36415
        page.locator("#lb-line-1-procedure [role=option]").first.wait_for()
        keys.press("ArrowDown")
        assert (
            page.locator("#f-line-1-procedure").get_attribute("aria-activedescendant")
            == "lb-line-1-procedure-0"
        )
        keys.press("Enter")
        assert page.locator("#f-line-1-procedure").input_value() == "36415"
        keys.press("Tab")
        keys.press("Tab")
        keys.press("Tab")
        keys.type("1")
        page.locator("#claim-total").get_by_text("$137.50").wait_for()  # the fee schedule's charges
        page.locator("#check-summary").get_by_text("The scrubber finds").wait_for()
        _tab_to(page, text="Save and mark ready")
        with page.expect_navigation():
            keys.press("Enter")

        assert page.locator("h1 .badge").inner_text() == "ready"
        assert "is ready: it goes out with the next batch" in page.get_by_role("status").first.inner_text()
        summary = page.get_by_role("region", name="Summary").inner_text()
        assert "$137.50" in summary
        assert [page.locator(f"#f-line-{i}-procedure").input_value() for i in range(2)] == ["99213", "36415"]
        assert page.locator("#f-line-2-procedure").count() == 0
        check_page(page, server, "charge-entry-saved")
        with server.session_factory() as session:
            claim = session.scalars(select(Claim).where(Claim.public_id == page.url.rsplit("/", 1)[1])).one()
            assert claim.state == ClaimState.READY
            assert [(line.procedure_code, line.charge_cents) for line in claim.service_lines] == [
                ("99213", 12500),
                ("36415", 1250),
            ]
            assert claim.total_charge_cents == 13750
            assert [dx.code for dx in claim.diagnoses] == ["E119", "I10"]
        claim_path = page.url

        # Ready to send: reached from the main navigation, by keyboard.
        _tab_to(page, text="Ready to send")
        with page.expect_navigation():
            keys.press("Enter")
        assert page.url.endswith("/ui/send")
        assert page.get_by_label(f"Select claim {claim.patient_control_number}").is_visible()
        page.get_by_label("Select all ready claims listed").focus()
        keys.press("Space")
        page.get_by_role("button", name="Send selected").focus()
        with page.expect_navigation():
            keys.press("Enter")
        assert "/ui/batches/" in page.url
        assert page.locator("h1 .badge").inner_text() == "sent"
        assert page.get_by_role("link", name=claim.patient_control_number).count() == 1

        # The clearinghouse answers; the server's scheduler (poll every 2 s here) does the rest.
        simulator = _simulator(office.instance_path)
        with running_process(simulator, lambda: True, name="the simulator", output=lambda: ""):
            deadline = time.monotonic() + 90
            while True:
                page.goto(claim_path)
                state = page.locator("h1 .badge").inner_text()
                if state == "paid" or time.monotonic() > deadline:
                    break
                time.sleep(1)
        assert state == "paid", f"the claim is {state!r} after 90 s"
        check_page(page, server, "charge-entry-paid")
        with server.session_factory() as session:
            claim = session.scalars(select(Claim).where(Claim.id == claim.id)).one()
            payment = session.scalars(select(ClaimPayment).where(ClaimPayment.claim_id == claim.id)).one()
            assert payment.charge_cents == 13750
            lines = session.scalars(
                select(LinePayment).where(LinePayment.claim_payment_id == payment.id)
            ).all()
            adjusted = session.scalars(
                select(Adjustment.amount_cents).where(Adjustment.line_payment_id.in_([x.id for x in lines]))
            ).all()
            # The payer accounted for every cent of the charge: paid + adjustments (CO, PR) = 137.50.
            assert payment.paid_cents + sum(adjusted) == 13750
            assert sum(x.paid_cents for x in lines) == payment.paid_cents
            # Every posting of the day balances: the trial balance sums to zero.
            assert session.scalar(select(func.sum(Posting.amount_cents))) == 0
    finally:
        context.close()
