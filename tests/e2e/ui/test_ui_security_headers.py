"""The workspace under its Content-Security-Policy in a real browser: no page breaks a rule.

Chromium reports every blocked inline style or script as a ``securitypolicyviolation``
event; the pages (the dashboard's SVG charts included) must raise none, and the charts
must still be drawn in their colours rather than the black an ignored ``style`` gives.
"""

from __future__ import annotations

from sqlalchemy import select

from claims_server.models import Claim, ClaimState

#: Collects the page's CSP violations (installed before any page script runs).
_LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sample || ''));
});
"""


def _violations(page) -> list[str]:
    return page.evaluate("() => window.__cspViolations || []")


def test_every_page_loads_under_the_csp_and_the_charts_keep_their_colours(ui_page, ui_server):
    with ui_server.session_factory() as session:
        claim = session.scalars(
            select(Claim).where(Claim.state == ClaimState.DENIED).order_by(Claim.id)
        ).first()
        assert claim is not None
        claim_path = f"/ui/claims/{claim.public_id}"
    page = ui_page("billing_supervisor")
    page.add_init_script(_LISTEN)
    for path in ("/ui/dashboard", "/ui/queues", "/ui/claims", claim_path, "/ui/remittances", "/ui/files"):
        answer = page.goto(ui_server.url(path))
        assert answer is not None and answer.status == 200, path
        csp = answer.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert answer.headers.get("x-frame-options") == "DENY"
        assert answer.headers.get("referrer-policy") == "same-origin"
        page.wait_for_load_state("load")
        assert _violations(page) == [], path
        if path == "/ui/dashboard":
            charts = page.locator("svg.chart")
            assert charts.count() >= 1
            # The bars of a chart are filled with the palette, not the default black.
            fills = page.evaluate(
                """() => Array.from(document.querySelectorAll('svg.chart path'))
                     .map(p => getComputedStyle(p).fill)
                     .filter(f => f && f !== 'none')"""
            )
            assert any(f not in ("rgb(0, 0, 0)",) for f in fills), fills[:10]
    # The sign-in page of a signed-out browser too.
    signed_out = ui_page(signed_in=False)
    signed_out.add_init_script(_LISTEN)
    answer = signed_out.goto(ui_server.url("/ui/sign-in?next=/ui/claims%0A"))
    assert answer is not None and answer.status == 200
    assert _violations(signed_out) == []
