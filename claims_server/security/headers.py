"""Browser security headers of the server-rendered pages (staff workspace, patient pages).

Each area installs one ``after_request`` hook made by :func:`page_headers` with its own
values (the workspace in ``ui/blueprint.py``, the patient pages in ``portal/views.py``):

- ``Referrer-Policy``: how much of our address another site may see when a page links
  out (the patient pages say nothing at all: their first address carries a one-time token);
- ``X-Frame-Options: DENY`` (and CSP ``frame-ancestors 'none'`` where the policy says so):
  no page can be framed by another site (clickjacking);
- ``Content-Security-Policy`` on HTML answers: scripts, styles and form targets from our
  own origin only. The pages carry no inline script or style (the dashboard's SVG charts
  use presentation attributes, ``reports/charts.py``), so an injected ``<script>`` or
  ``style`` attribute does nothing;
- ``Strict-Transport-Security`` when ``CLAIMS_ENV=production`` (a year): PHI pages are only
  ever served over HTTPS, and the browser must not be talked into plain HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app

#: HSTS in production (a year).
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def page_headers(*, referrer_policy: str, content_security_policy: str) -> Callable[[Response], Response]:
    """An ``after_request`` hook setting the headers above (a view's own CSP is kept)."""

    def add_headers(response: Response) -> Response:
        response.headers["Referrer-Policy"] = referrer_policy
        response.headers.setdefault("X-Frame-Options", "DENY")
        if current_app.extensions["claims_server"].settings.CLAIMS_ENV == "production":
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", content_security_policy)
        return response

    return add_headers
