"""Security: PHI encryption, blind indexes, audit trail, authentication, authorization, limits.

``init_app(app)`` (called by ``create_app``) loads the key ring, registers the field
cipher for the app's engine, starts audit checkpoints, installs the central policy
hook and registers the auth and patient-link blueprints. See docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from claims_server.config import Settings
from claims_server.security.clock import Clock, system_clock


@dataclass
class SecurityExtension:
    """What the security layer keeps per app (``app.extensions["claims_security"]``)."""

    settings: Settings
    cipher: Any
    limiter: Any
    checkpointer: Any
    clock: Clock = field(default=system_clock)


def init_app(app: Flask) -> SecurityExtension:
    from claims_server.app import state
    from claims_server.security import csrf, enforce, read_audit, views
    from claims_server.security.checkpoints import Checkpointer, open_mirror, register_checkpointer
    from claims_server.security.fields import build_cipher, register_cipher
    from claims_server.security.ratelimit import make_limiter

    app_state = state(app)
    settings = app_state.settings
    with app_state.engine.begin() as conn:
        cipher, _created = build_cipher(conn, settings)
    register_cipher(app_state.engine, cipher)
    ext = SecurityExtension(settings=settings, cipher=cipher, limiter=None, checkpointer=None)

    def _clock() -> Any:
        return ext.clock()

    ext.limiter = make_limiter(app, settings)
    ext.checkpointer = Checkpointer(
        app_state.engine,
        lambda: cipher.ring,
        Path(settings.audit_checkpoint_dir),
        every_events=settings.AUDIT_CHECKPOINT_EVENTS,
        every_seconds=settings.AUDIT_CHECKPOINT_SECONDS,
        clock=_clock,
        mirror=(lambda: open_mirror(settings)) if settings.AUDIT_CHECKPOINT_MIRROR else None,
    )
    register_checkpointer(ext.checkpointer)
    if not app.testing:
        ext.checkpointer.start()
    app.extensions["claims_security"] = ext
    enforce.register(app)
    csrf.init_app(app)
    read_audit.register(app)
    api = app.extensions["claims_server_api"]
    api.register_blueprint(views.auth_blp)
    api.register_blueprint(views.patient_blp)
    return ext
