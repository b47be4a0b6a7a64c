"""Fixtures of the eligibility tests: the demo practice, a CORE endpoint on 127.0.0.1, SFTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from claims_server.models import ClearinghouseRoute, Coverage, RelationshipToSubscriber
from claims_server.simulator.eligibility import core_endpoint
from tests.integration.submission.conftest import (  # noqa: F401
    factory,
    folder_route,
    ids,
    route,
    sftp_route,
    sftp_server,
)


class CoreServer:
    """The simulator's CORE endpoint served by a real HTTP server in a thread."""

    def __init__(self, slow_seconds: float) -> None:
        self.requests = 0
        app = core_endpoint(slow_seconds=slow_seconds)

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            self.requests += 1
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, counting, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/core/eligibility"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def core_server() -> Iterator[CoreServer]:
    server = CoreServer(slow_seconds=2.0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def realtime_route(session, route: ClearinghouseRoute, core_server: CoreServer) -> ClearinghouseRoute:  # noqa: F811
    route.settings = {
        **(route.settings or {}),
        "eligibility_url": core_server.url,
        "eligibility_timeout_seconds": 0.5,
    }
    session.commit()
    return route


@pytest.fixture
def self_coverage(session, ids) -> Coverage:  # noqa: F811
    return session.scalar(select(Coverage).where(Coverage.public_id == ids["coverage"]))


@pytest.fixture
def dependent_coverage(session, ids) -> Coverage:  # noqa: F811
    found = session.scalar(select(Coverage).where(Coverage.public_id == ids["dependent_coverage"]))
    assert found.relationship_code != RelationshipToSubscriber.SELF
    return found
