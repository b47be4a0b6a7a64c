"""Fixtures of the payment tests: the seeded practice (patients, payers, a rendering provider)."""

from __future__ import annotations

import pytest

from tests.integration.remittance.support import World, seed_world


@pytest.fixture
def world(session) -> World:
    return seed_world(session)


@pytest.fixture
def factory(app):
    from claims_server.app import state

    return state(app).session_factory
