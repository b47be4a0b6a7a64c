"""Saved filters on the queue page: save the current filter under a name, delete one.

The list of the user's filters (links above the table) is drawn by ``queues._render``;
these two forms post here and go back to the queue page. The rules are the API's
(``claims_server.workqueue.saved_filters``): a refused save shows the page again, with the
message beside the name field and the filter the user was looking at.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, flash, redirect, request, url_for

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.ui.blueprint import bp, current_user, field_errors
from claims_server.ui.queues import _render
from claims_server.workqueue import saved_filters


def _back(query: str) -> Response:
    return redirect(url_for("ui.queues") + (f"?{query}" if query else ""), 303)


@bp.route("/queues/saved-filters", methods=["POST"], endpoint="save_queue_filter")
@mutation()
def save_queue_filter() -> Response:
    """Save the filter shown (the form carries its query string) under the name typed."""
    session = db_session()
    name = request.form.get("name", "")
    query = request.form.get("query", "")
    try:
        saved = saved_filters.save_filter(session, current_user(), name, query)
    except ApiError as exc:
        session.rollback()
        errors = field_errors(exc, {"name": "name", "query": "name"})
        return _render(422, saved_errors=errors, saved_form={"name": name[:200]})
    flash(f"Filter “{saved.name}” saved; it is listed above the table.", "success")
    return _back(saved.query)


@bp.route("/queues/saved-filters/<filter_id>/delete", methods=["POST"], endpoint="delete_queue_filter")
@mutation()
def delete_queue_filter(filter_id: str) -> Response:
    """Delete one of the user's saved filters (another user's is not found)."""
    session = db_session()
    try:
        saved_filters.delete_saved_filter(session, current_user(), filter_id)
    except ApiError as exc:
        session.rollback()
        return _render(exc.status if exc.status in (404, 422) else 422, saved_errors={"_saved": exc.detail})
    flash("Saved filter deleted.", "success")
    return _back(urlencode({k: v for k, v in request.args.items() if v}))
