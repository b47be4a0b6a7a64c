"""Fixtures of the claims tests: the seeded demo practice."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.claims.support import seed


@pytest.fixture
def ids(session) -> dict[str, Any]:
    return seed(session)


@pytest.fixture
def api(api_client):
    """A test client signed in as a biller (the security module's fixture)."""
    return api_client("biller")
