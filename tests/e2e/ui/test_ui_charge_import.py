"""Import charges in a real browser: the page's script sends the CSV as the raw body, shows the
per-row preview, imports on "Import" and opens the import; a refused file lists its rows."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.models import ChargeImport, Claim
from tests.charge_files import HEADER, charge_csv_bytes, charge_rows
from tests.e2e.ui.a11y import check_page


def _file(name: str, body: bytes) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": body}


def test_a_biller_checks_then_imports_a_charge_file(ui_page, ui_server):
    with ui_server.session_factory() as session:
        rows, facts = charge_rows(session, claims=4, prefix="E2EIMP")
        before = session.scalar(select(func.count()).select_from(Claim))
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/claims"))
    page.get_by_role("link", name="Import charges").click()
    page.wait_for_url("**/ui/charge-imports")
    check_page(page, ui_server, "charge-imports")

    bad = [list(r) for r in rows]
    bad[1][HEADER.index("service_date")] = "2024-02-30"
    page.get_by_label("Charge file (CSV)").set_input_files(_file("bad.csv", charge_csv_bytes(bad)))
    page.get_by_role("button", name="Check the file").click()
    errors = page.locator("#charge-errors")
    errors.wait_for()
    assert "service_date" in errors.inner_text() and "2" in errors.locator("td").first.inner_text()
    assert page.evaluate("document.activeElement.id") == "result-heading"
    assert page.get_by_role("button", name="Import").count() == 0

    page.get_by_label("Charge file (CSV)").set_input_files(_file("charges.csv", charge_csv_bytes(rows)))
    page.get_by_role("button", name="Check the file").click()
    preview = page.locator("#charge-preview-rows")
    preview.wait_for()
    assert preview.locator("tbody tr").count() == facts.lines
    assert page.evaluate("document.activeElement.id") == "result-heading"
    page.keyboard.press("Tab")  # from the focused heading to the Import button
    assert page.evaluate("document.activeElement.id") == "charge-import-button"
    check_page(page, ui_server, "charge-import-preview")
    with ui_server.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == before  # nothing yet
    page.locator("#charge-import-button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/charge-imports/*")
    assert page.locator("#import-claims tbody tr").count() == 4
    cents = facts.total_charge_cents
    assert page.locator("#import-total").inner_text() == f"${cents // 100}.{cents % 100:02d}"
    with ui_server.session_factory() as session:
        record = session.scalar(select(ChargeImport).order_by(ChargeImport.id.desc()))
        assert page.url.endswith(record.public_id) and record.claim_count == 4
        assert session.scalar(select(func.count()).select_from(Claim)) == before + 4
