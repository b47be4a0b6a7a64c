"""Helpers for the workspace's Flask-client tests."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser

import pytest

from claims_server.app import state
from claims_server.demo_day import run_billing_day
from tests.integration.claims.support import seed

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token_of(client, path: str = "/ui/queues") -> str:
    """This client's CSRF token, read from a page's form (the token lives in the browser session)."""
    answer = client.get(path)
    found = _TOKEN.search(answer.get_data(as_text=True))
    assert found, f"no form with a CSRF token on {path} ({answer.status_code})"
    return found.group(1)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "action", "src") and value:
                self.urls.append(value)


def linked_urls(html: str) -> list[str]:
    """Every href, form action and src of a page."""
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def billing_day(app, session, tmp_path):
    """The demo practice after the demo's billing day (denials, a rejection, work items)."""
    ids = seed(session)
    run_billing_day(state(app).session_factory, tmp_path / "day", today=date.today())
    session.rollback()
    return ids
