"""The queue table in a real browser: sort by clicking a column header, save the filter and open
it again from its link, and at 800 px wide the first row's action buttons are on screen."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.e2e.ui.a11y import check_page


def _amounts(page) -> list[Decimal]:  # type: ignore[no-untyped-def]
    texts = page.locator('tbody td[data-label="Amount"]').all_inner_texts()
    out = []
    for text in texts:
        value = Decimal(re.sub(r"[^0-9.]", "", text))
        out.append(-value if "credit" in text else value)
    return out


def test_a_biller_sorts_by_a_header_saves_the_filter_and_opens_it_again(ui_page, ui_server):
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/queues"))
    page.locator("tbody tr[data-item]").first.wait_for()
    header = page.locator("thead a.sort-link[data-sort=amount]")
    header.click()
    page.wait_for_url("**/ui/queues?sort=amount&order=asc")
    page.locator('th[aria-sort="ascending"] a[data-sort=amount]').wait_for()
    ascending = _amounts(page)
    assert len(ascending) > 1 and ascending == sorted(ascending)
    page.locator("thead a.sort-link[data-sort=amount]").click()
    page.wait_for_url("**/ui/queues?sort=amount&order=desc")
    page.locator('th[aria-sort="descending"] a[data-sort=amount]').wait_for()
    descending = _amounts(page)
    assert descending == sorted(descending, reverse=True)
    # Dates of service and filing deadlines are columns of their own.
    first_row = page.locator("tbody tr[data-item]").first
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}", first_row.locator('td[data-label="Date of service"]').inner_text()
    )
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}.*", first_row.locator('td[data-label="Filing deadline"]').inner_text()
    )

    page.get_by_label("Save this filter as").fill("Largest first (e2e)")
    page.get_by_role("button", name="Save filter").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    check_page(page, ui_server, "queues-saved-filter")

    page.goto(ui_server.url("/ui/queues"))
    page.get_by_role("link", name="Largest first (e2e)").click()
    page.wait_for_url("**/ui/queues?sort=amount&order=desc")
    page.locator('th[aria-sort="descending"] a[data-sort=amount]').wait_for()
    assert _amounts(page) == descending


@pytest.mark.parametrize("width", [800, 1280])
def test_the_first_rows_recommended_action_and_buttons_are_on_screen(browser, ui_server, ui_page, width):
    ui_page("biller")  # signs the biller in once (the cookies are reused)
    context = browser.new_context(
        viewport={"width": width, "height": 900}, storage_state=ui_server.signed_in_states["biller"]
    )
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(ui_server.url("/ui/queues"))
        row = page.locator("tbody tr[data-item]").first
        row.wait_for()
        buttons = row.locator("td.row-actions button")
        assert buttons.count() >= 1
        boxes = [buttons.nth(i).bounding_box() for i in range(buttons.count())]
        boxes.append(row.locator("td.row-actions .recommended").bounding_box())
        for box in boxes:
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        # Nothing scrolls sideways: the page is as wide as the window.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(ui_server.screenshot_dir / f"queue-table-{width}.png"))
    finally:
        context.close()
