"""Fixtures of the remittance tests: the seeded world and the app's session factory."""

from __future__ import annotations

import pytest

from tests.integration.remittance.support import World, seed_world


@pytest.fixture
def factory(app):
    from claims_server.app import state

    return state(app).session_factory


@pytest.fixture
def world(session) -> World:
    return seed_world(session)
