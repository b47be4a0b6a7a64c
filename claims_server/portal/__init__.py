"""The patient pages at ``/pay``: open the statement link, confirm the birth date, see the statement, pay.

``init_app(app)`` registers the blueprint (``claims_server.portal.views``); the addresses
other modules print or email live in ``claims_server.portal.urls`` (no Flask import).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the patient pages at ``/pay``."""
    from claims_server.portal.views import bp

    app.register_blueprint(bp)
