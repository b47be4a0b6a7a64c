"""Accessibility basics and screenshots for workspace pages, checked in a real browser.

``check_page(page, server, "queues")`` runs them all on the page as it is and saves
``queues-1280.png`` and ``queues-800.png``:

- every input, select and textarea has a label (``label[for]``, a wrapping label,
  ``aria-label`` or ``aria-labelledby``);
- headings: exactly one visible h1 and no skipped level going down;
- focus is visible: tabbing reaches controls whose computed outline or box-shadow shows;
- no horizontal scrolling of the page at 1280 px and at 800 px wide.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

WIDTHS = (1280, 800)

_UNLABELLED_JS = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes((el.type || '').toLowerCase()))
  .filter(el => {
    if (el.getAttribute('aria-label') && el.getAttribute('aria-label').trim()) return false;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).every(id => document.getElementById(id))) return false;
    if (el.closest('label')) return false;
    if (el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) return false;
    return true;
  })
  .map(el => el.outerHTML.slice(0, 160))
"""

_HEADINGS_JS = """
() => Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6'))
  .filter(h => h.offsetParent !== null || h.getClientRects().length > 0)
  .map(h => [parseInt(h.tagName.slice(1), 10), h.textContent.trim().slice(0, 60)])
"""

_FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName, text: (el.textContent || el.value || '').trim().slice(0, 40),
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
    shadow: style.boxShadow && style.boxShadow !== 'none',
  };
}
"""


def assert_inputs_labelled(page: Any) -> None:
    unlabelled = page.evaluate(_UNLABELLED_JS)
    assert unlabelled == [], f"{page.url}: controls without a label: {unlabelled}"


def assert_headings_in_order(page: Any) -> None:
    headings = page.evaluate(_HEADINGS_JS)
    levels = [level for level, _ in headings]
    assert levels.count(1) == 1, f"{page.url}: want exactly one h1, got {headings}"
    assert levels[0] == 1, f"{page.url}: the first heading is not the h1: {headings}"
    for before, after in pairwise(levels):
        assert after <= before + 1, f"{page.url}: heading level skipped ({before} -> {after}): {headings}"


def assert_focus_visible(page: Any, tabs: int = 6) -> None:
    """Tab through the first controls; each focused one must show an outline or a shadow."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    page.locator("body").focus()
    seen = 0
    for _ in range(tabs):
        page.keyboard.press("Tab")
        focus = page.evaluate(_FOCUS_JS)
        if focus is None:
            continue
        seen += 1
        assert focus["outline"] or focus["shadow"], f"{page.url}: focus not visible on {focus}"
    assert seen, f"{page.url}: Tab reached no control"


def assert_no_horizontal_scroll(page: Any, width: int) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url}: the page scrolls sideways by {overflow}px at {width}px wide"


def check_page(page: Any, server: Any, name: str) -> None:
    """All the checks above, and a screenshot at each width (``<name>-<width>.png``)."""
    page.wait_for_load_state()
    assert_inputs_labelled(page)
    assert_headings_in_order(page)
    assert_focus_visible(page)
    original = page.viewport_size
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert_no_horizontal_scroll(page, width)
            screenshot(page, server, f"{name}-{width}")
    finally:
        page.set_viewport_size(original)


def screenshot(page: Any, server: Any, name: str) -> None:
    page.screenshot(path=str(server.screenshot_dir / f"{name}.png"), full_page=True)
