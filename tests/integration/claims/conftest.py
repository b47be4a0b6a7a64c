"""Fixtures of the claims tests: the seeded demo practice."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.claims.support import seed


@pytest.fixture
def ids(session) -> dict[str, Any]:
    return seed(session)
