"""Where a patient pays: the addresses the statement email and the printed statement carry.

Flask-free, so the statement run (a Celery worker) and delivery can build them too. The
link path carries the one-time token (a credential, not PHI); the portal swaps it for a
session cookie on first use and redirects to an address without it.
"""

from __future__ import annotations

from typing import Any

#: The patient pages' mount point (claims_server.portal.views).
PORTAL_PREFIX = "/pay"


def pay_page_url(settings: Any) -> str:
    """The portal's front page, printed on the paper statement (no token: paper cannot carry one)."""
    return f"{str(settings.PUBLIC_BASE_URL).rstrip('/')}{PORTAL_PREFIX}"


def pay_link_url(settings: Any, token: str) -> str:
    """The statement email's one-time link: opens the birth-date check for this patient."""
    return f"{pay_page_url(settings)}/l/{token}"
