"""Fixtures of the work-queue tests: the seeded demo practice and a claim on it."""

from __future__ import annotations

from typing import Any

import pytest

from claims_server.claims import services as claim_services
from claims_server.models import Claim
from tests.integration.claims.support import claim_json, seed


@pytest.fixture
def ids(session) -> dict[str, Any]:
    return seed(session)


@pytest.fixture
def claim(session, ids) -> Claim:
    created = claim_services.create_claim_from_json(session, claim_json(ids)).claim
    session.commit()
    return created
