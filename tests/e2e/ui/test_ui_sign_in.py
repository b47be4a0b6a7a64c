"""Sign-in with the second factor, enrolment, the timeout warning and sign-out, in a real browser."""

from __future__ import annotations

import re

from tests.e2e.conftest import sign_in
from tests.e2e.ui.a11y import check_page


def test_sign_in_page_is_accessible_and_a_wrong_code_is_refused_next_to_the_form(ui_page, ui_server):
    import pyotp

    page = ui_page(signed_in=False)
    page.goto(ui_server.url("/ui/queues"))
    assert "/ui/sign-in" in page.url and "next=/ui/queues" in page.url
    check_page(page, ui_server, "sign-in")
    user = ui_server.users["biller"]
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    current = pyotp.TOTP(user.totp_secret).now()  # peeked, not handed out: user.code() stays fresh
    page.get_by_label("Authenticator code").fill("000000" if current != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Sign-in failed")
    assert "/ui/sign-in" in page.url
    page.get_by_label("Authenticator code").fill(user.code())
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/ui/queues")
    assert page.get_by_role("heading", level=1).inner_text() == "Work queues"


def test_a_user_without_a_second_factor_enrols_before_anything_else(ui_page, ui_server):
    import pyotp

    page = ui_page(signed_in=False)
    sign_in(page, ui_server, ui_server.users["newcomer"])
    assert page.url.endswith("/ui/enrol")
    page.goto(ui_server.url("/ui/queues"))
    assert page.url.endswith("/ui/enrol"), "a page other than enrolment answered without a second factor"
    page.get_by_role("button", name="Set up my authenticator").click()
    secret = page.locator("code.secret").inner_text()
    assert page.locator("code.uri").inner_text().startswith("otpauth://totp/")
    assert page.locator(".qr svg").count() == 1
    check_page(page, ui_server, "enrol")
    page.get_by_label("Code from the app").fill("12345")
    page.get_by_role("button", name="Confirm").click()
    assert "6 digits" in page.locator("#f-code-error").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    assert "/ui/enrol" not in page.url and "/ui/sign-in" not in page.url
    page.goto(ui_server.url("/ui/queues"))
    assert page.url.endswith("/ui/queues"), "enrolled, the pages answer"


def test_timeout_warning_keeps_the_session_and_sign_out_ends_it(browser, ui_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.clock.install()
        sign_in(page, ui_server, ui_server.users["leaver"], next_path="/ui/queues")
        assert page.url.endswith("/ui/queues")
        dialog = page.locator("#session-warning")
        assert not dialog.is_visible()
        idle = int(page.locator("body").get_attribute("data-idle-minutes"))
        page.clock.fast_forward(f"{idle - 2:02d}:01")
        assert dialog.is_visible()
        with page.expect_response(re.compile(r"/ui/session/keepalive$")) as answer:
            page.get_by_role("button", name="Stay signed in").click()
        assert answer.value.status == 204
        assert not dialog.is_visible()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/ui/sign-in"))
        page.get_by_text("You are signed out.").wait_for()
        page.goto(ui_server.url("/ui/queues"))
        assert "/ui/sign-in" in page.url
    finally:
        context.close()
