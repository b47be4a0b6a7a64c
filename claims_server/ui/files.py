"""Batch and file history (``/ui/files``): every interchange in and out, its acknowledgments, the raw file.

The list is metadata only (``claims_server.clearinghouse.history``: column queries, the
encrypted content is neither loaded nor decrypted), so filters are not PHI and may be in
the URL. Downloading a raw file decrypts it and is audited, one event per download.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, request, url_for

from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.clearinghouse.history import FileFilters, file_history, kind_counts, read_raw_file
from claims_server.errors import ApiError
from claims_server.models import EdiFileKind, EdiFileStatus, FileDirection
from claims_server.ui.blueprint import bp, page

DIRECTIONS = (("", "In and out"), ("in", "Received (in)"), ("out", "Sent (out)"))


def _choice(name: str, enum: Any, errors: dict[str, str]) -> Any:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return enum(raw)
    except ValueError:
        errors[name] = f"Choose one of the listed {name.replace('_', ' ')} values."
        return None


def _day(name: str, errors: dict[str, str]) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None


@bp.route("/files", methods=["GET"], endpoint="files")
def files() -> Response:
    """Interchanges newest first, filtered by direction, kind, status and received date (or one ``file``)."""
    errors: dict[str, str] = {}
    filters = FileFilters(
        direction=_choice("direction", FileDirection, errors),
        kind=_choice("kind", EdiFileKind, errors),
        status=_choice("status", EdiFileStatus, errors),
        received_from=_day("received_from", errors),
        received_to=_day("received_to", errors),
        public_id=(request.args.get("file") or "").strip()[:40] or None,
    )
    if filters.received_from and filters.received_to and filters.received_from > filters.received_to:
        errors["received_to"] = "The end date must not be before the start date."
    session = db_session()
    try:
        history = file_history(session, filters, limit=50, cursor=request.args.get("cursor") or None)
    except ApiError as exc:  # a cursor from other filters, or forged
        errors["_form"] = exc.detail
        history = file_history(session, filters, limit=50)
    counts = kind_counts(session)
    chosen = {k: v for k, v in filters.as_dict().items() if v}
    older = url_for("ui.files", cursor=history.next_cursor, **chosen) if history.next_cursor else None
    return page(
        "files.html",
        422 if errors else 200,
        errors=errors,
        history=history,
        counts=counts,
        filters=filters.as_dict(),
        older_url=older,
        directions=DIRECTIONS,
        kinds=[("", "Any")] + [(k.value, k.value) for k in EdiFileKind],
        statuses=[("", "Any")] + [(s.value, s.value) for s in EdiFileStatus],
    )


@bp.route("/files/<file_id>/raw", methods=["GET"], endpoint="file_download")
@mutation()
def file_download(file_id: str) -> Response:
    """The raw X12 file as stored (decrypted), as an attachment; the download is audited."""
    raw = read_raw_file(db_session(), file_id)
    response = Response(raw.content, mimetype="application/edi-x12")
    response.headers["Content-Disposition"] = f'attachment; filename="{raw.name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
