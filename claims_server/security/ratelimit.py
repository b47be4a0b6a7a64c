"""Rate limits (Flask-Limiter): sign-in, patient links and uploads.

One ``Limiter`` per app, keyed by client address (``principal.client_address``: behind
``TRUSTED_PROXY_COUNT`` proxies, the forwarded one), stored in Redis when ``REDIS_URL``
is set (shared by every worker, survives restarts) and in memory otherwise. Views use
``with rate_limit("RATE_LIMIT_LOGIN"):``; the rate is the setting of that name. An
exceeded limit is a 429 problem+json with Retry-After.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import Flask, current_app
from flask_limiter import Limiter

from claims_server.config import Settings
from claims_server.security.principal import client_address


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    return Limiter(
        client_address,
        app=app,
        storage_uri=settings.REDIS_URL or "memory://",
        default_limits=[],
        headers_enabled=True,
        key_prefix="claims-rl",
        strategy="fixed-window",
    )


def rate_limit(setting: str) -> AbstractContextManager[None]:
    """A context manager applying the rate named by ``setting`` to the current request."""
    ext = current_app.extensions["claims_security"]
    return ext.limiter.limit(getattr(ext.settings, setting), key_func=client_address)
