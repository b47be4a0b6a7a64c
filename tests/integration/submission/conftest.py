"""Fixtures of the submission pipeline tests: the demo practice, ready claims, an SFTP server."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from claims_server.app import state
from claims_server.claims.services import create_claim_from_json
from claims_server.models import Claim, ClearinghouseRoute
from tests.integration.claims.support import claim_json, seed
from tests.integration.submission.sftp_server import SftpServer, start_sftp_server, stop_sftp_server

RECENT = date.today() - timedelta(days=10)


@pytest.fixture
def factory(app):
    return state(app).session_factory


@pytest.fixture
def ids(session) -> dict[str, Any]:
    return seed(session)


def recent_claim(ids: dict[str, Any], *, dependent: bool = False, **overrides: Any) -> dict[str, Any]:
    """A clean claim dated ten days ago (inside every payer's filing limit)."""
    doc = claim_json(ids, ready=True, **overrides)
    if dependent:
        doc["patient"], doc["coverage"] = ids["dependent_patient"], ids["dependent_coverage"]
    for line in doc["lines"]:
        line["service_date"] = RECENT.isoformat()
    return doc


@pytest.fixture
def make_claims(session, ids) -> Callable[..., list[Claim]]:
    """``make_claims(n)``: n ready claims (alternating self-insured and dependent patients), committed."""

    def make(count: int, **overrides: Any) -> list[Claim]:
        claims = []
        for i in range(count):
            result = create_claim_from_json(session, recent_claim(ids, dependent=bool(i % 2), **overrides))
            claims.append(result.claim)
        session.commit()
        return claims

    return make


@pytest.fixture
def route(session, ids) -> ClearinghouseRoute:
    return session.scalar(select(ClearinghouseRoute))


@pytest.fixture
def folder_route(session, route, tmp_path) -> ClearinghouseRoute:
    """The demo route pointed at absolute folders under tmp_path."""
    route.settings = {"outbox": str(tmp_path / "ch" / "outbox"), "inbox": str(tmp_path / "ch" / "inbox")}
    session.commit()
    return route


@pytest.fixture
def sftp_server(tmp_path) -> Iterator[SftpServer]:
    keys = tmp_path / "keys"
    keys.mkdir()
    info, loop, listener = start_sftp_server(tmp_path / "sftp-root", keys)
    try:
        yield info
    finally:
        stop_sftp_server(loop, listener, info)


@pytest.fixture
def sftp_route(session, route, sftp_server) -> ClearinghouseRoute:
    from claims_server.models import TransportKind

    route.transport = TransportKind.SFTP
    route.settings = sftp_server.route_settings()
    session.commit()
    return route


def outbox_of(route: ClearinghouseRoute) -> Path:
    return Path(route.settings["outbox"])


@contextmanager
def broker_refusing(app) -> Iterator[None]:
    """Sending queues through a broker that refuses every connection (a closed port); eager again after.

    Celery caches its producer pool and result backend: both are dropped on the way in and out,
    so neither this block nor a later test talks to the wrong broker.
    """
    from claims_server.tasks.celery_app import celery_app, configure_celery

    def forget_connections() -> None:
        celery_app.amqp._producer_pool = None
        celery_app._pool = None
        celery_app._backend_cache = None
        celery_app._local.__dict__.pop("backend", None)

    settings = state(app).settings
    configure_celery(dataclasses.replace(settings, CELERY_BROKER_URL="redis://127.0.0.1:1/0"))
    forget_connections()
    try:
        yield
    finally:
        configure_celery(settings)
        forget_connections()
