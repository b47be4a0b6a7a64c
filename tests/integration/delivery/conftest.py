"""Fixtures of the delivery tests: issued statements, and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.delivery.support import issue_statements


@pytest.fixture
def factory(app):
    from claims_server.app import state

    return state(app).session_factory


@pytest.fixture
def issued(session, factory):
    return issue_statements(session, factory)


@dataclass
class SmtpSink:
    """What the SMTP server received, and the recipients it refuses (550)."""

    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "data": envelope.content}
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) listening on 127.0.0.1 for the test."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink("127.0.0.1", _free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
