"""The staff workspace: server-rendered pages at ``/ui`` over the same services and policy as the API.

One Blueprint (``claims_server.ui.blueprint.bp``, name ``ui``); each page module adds its
routes to it and is listed in ``PAGE_MODULES``. See docs/ui.md for how a page is built.
"""

from __future__ import annotations

import importlib

from flask import Flask, Response, redirect, url_for

#: Modules that add pages to the ``ui`` blueprint (imported for their route decorators).
PAGE_MODULES: tuple[str, ...] = (
    # --- ui part 1: sign-in, work queues, claims
    "auth",
    "queues",
    "saved_filters",  # the queue page's saved filters: save the current filter, delete one
    "claims",
    # --- end ui part 1
    # --- ui part 2: dashboard, remittances, files, patients
    "dashboard",
    "remittances",
    "files",
    "patients",
    # --- end ui part 2
    "charges",  # charge entry: key a claim, code lookups
    "fees",  # the fee schedule
    "scheduler",  # the periodic jobs (supervisors)
    "sending",  # Ready to send, batches
    "charge_imports",  # Import charges: a charge CSV checked row by row, then imported
    "appeals",  # Appeals: open appeals by deadline, one appeal's letter, attachments and outcome
    "followups",  # notes panel, a work item's page (notes, manual resolve), My follow-ups
    "approvals",  # Approvals: over-limit write-offs and refunds for a supervisor; withdrawal
    "unmatched",  # Unmatched payments: the payer's figures, apply to a claim, return to the payer
    "credits",  # Credit balances: refund, transfer, hold; a refund's page (the payer's refund letter)
)


def _root() -> Response:
    return redirect(url_for("ui.home"))


def init_app(app: Flask) -> None:
    """Register the workspace at ``/ui`` and send ``/`` there."""
    for name in PAGE_MODULES:
        importlib.import_module(f"claims_server.ui.{name}")
    from claims_server.ui.blueprint import bp

    app.register_blueprint(bp)
    app.add_url_rule("/", endpoint="ui_root", view_func=_root)
