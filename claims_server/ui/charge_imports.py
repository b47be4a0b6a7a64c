"""Import charges (``/ui/charge-imports``): upload a charge CSV, see every row checked, then import.

The page's script (``static/charge_import.js``) sends the chosen file as the raw body
(``text/csv``), never multipart (security/uploads.py): first to ``check``, which runs the
import as a dry run and answers the per-row preview (each row as the line it becomes,
with the scrub's findings) or the refusal (each line, column and rule); then, when the
biller presses Import, the same bytes to ``import``, which imports them exactly once
(``claims.charge_import``: the file's SHA-256 makes a second press a ``duplicate``). The
file is never stored: between the two requests it stays in the browser. Both answers are
HTML fragments rendered here (autoescaped) that the script puts in the page.
"""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request, url_for
from sqlalchemy import func, select

from claims_server.api_common.limits import CSV_CONTENT_TYPE, charge_file_limit
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims import charge_import
from claims_server.claims.charge_csv import COLUMNS, LIST_SEPARATOR, ChargeFileRefused
from claims_server.errors import ApiError
from claims_server.models import Practice
from claims_server.security.ratelimit import rate_limit
from claims_server.security.uploads import raw_body_stream
from claims_server.ui.blueprint import bp, page


def _practices() -> list[tuple[str, str]]:
    session = db_session()
    if (session.scalar(select(func.count()).select_from(Practice)) or 0) < 2:
        return []
    return [(p.public_id, p.name) for p in session.scalars(select(Practice).order_by(Practice.name))]


@bp.route("/charge-imports", methods=["GET"], endpoint="charge_imports")
def charge_imports() -> Response:
    """The upload form, the layout in brief, and the recent imports."""
    session = db_session()
    listing = charge_import.list_charge_imports(session, limit=25, cursor=request.args.get("cursor") or None)
    return page(
        "charge_imports.html",
        imports=[charge_import.charge_import_to_json(session, r, with_claims=False) for r in listing.items],
        next_cursor=listing.next_cursor,
        columns=COLUMNS,
        separator=LIST_SEPARATOR,
        practices=_practices(),
        max_bytes=charge_file_limit(),
    )


@bp.route("/charge-imports/<import_id>", methods=["GET"], endpoint="charge_import")
def charge_import_page(import_id: str) -> Response:
    """One import: its counts and totals, its claims' states now, and the claims it created."""
    session = db_session()
    record = charge_import.charge_import_to_json(session, charge_import.get_charge_import(session, import_id))
    return page("charge_import.html", record=record)


def _fragment(status: int, **context: Any) -> Response:
    return make_response(render_template("ui/charge_import_result.html", **context), status)


def _run(dry_run: bool) -> tuple[charge_import.ChargeImportReport | None, Response | None]:
    """The import (or its dry run) of the request body; or the fragment saying why not."""
    try:
        with rate_limit("RATE_LIMIT_UPLOAD"):
            report = charge_import.import_charges(
                db_session(),
                raw_body_stream(),
                max_bytes=charge_file_limit(),
                practice=request.args.get("practice") or None,
                dry_run=dry_run,
            )
    except ChargeFileRefused as exc:
        db_session().rollback()
        return None, _fragment(422, refused=exc, omitted=max(0, exc.total - len(exc.row_errors)))
    except ApiError as exc:
        db_session().rollback()
        return None, _fragment(exc.status, problem=exc)
    return report, None


@bp.route("/charge-imports/check", methods=["POST"], endpoint="charge_import_check")
@mutation()
def charge_import_check() -> Response:
    """Dry run of the uploaded file: the per-row preview with findings, or every refused row."""
    report, refusal = _run(dry_run=True)
    if report is None:
        return refusal  # type: ignore[return-value]
    return _fragment(200, report=report)


charge_import_check.accepts = (CSV_CONTENT_TYPE,)  # type: ignore[attr-defined]  # CHARGE_IMPORT_MAX_BYTES


@bp.route("/charge-imports/import", methods=["POST"], endpoint="charge_import_run")
@mutation()
def charge_import_run() -> Response:
    """Import the file previewed (exactly once); answers where its import page is."""
    report, refusal = _run(dry_run=False)
    if report is None:
        return refusal  # type: ignore[return-value]
    response = _fragment(
        201 if report.status == "imported" else 200,
        imported=report,
        target=url_for("ui.charge_import", import_id=report.import_id),
    )
    response.headers["X-Import-Location"] = url_for("ui.charge_import", import_id=report.import_id)
    return response


charge_import_run.accepts = (CSV_CONTENT_TYPE,)  # type: ignore[attr-defined]
