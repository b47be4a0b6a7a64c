"""The security clock: session timeouts, lockouts, link expiry and audit times read it.

Injectable so tests can freeze and move time instead of sleeping: an app can carry
its own clock (``app.extensions["claims_security"].clock``); outside an app the
process-wide ``system_clock`` answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """The current aware UTC time from the app's clock, if it has one, else the system's."""
    if has_app_context():
        ext = current_app.extensions.get("claims_security")
        if ext is not None:
            return ext.clock()
    return system_clock()


class FrozenClock:
    """A clock that stands still until told to move (tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current
