"""``/api/v1/charge-imports``: import a charge CSV (or preview it), list imports, read one.

The file is the raw request body (``text/csv``), never multipart: Werkzeug spools multipart
parts to temporary files, which would put PHI on disk in clear (security/uploads.py). Its
size is checked on the ``Content-Length`` header (413 before a byte is read) and again
while it streams (``CHARGE_IMPORT_MAX_BYTES``, never above ``MAX_UPLOAD_BYTES``).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from claims_server.api_common.fields import PublicId, StrictBoolean, StrictInteger
from claims_server.api_common.limits import CSV_CONTENT_TYPE, charge_file_limit
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.claims import charge_import
from claims_server.claims.charge_csv import COLUMNS
from claims_server.security.ratelimit import rate_limit
from claims_server.security.uploads import raw_body_stream

blp = Blueprint(
    "charge_imports",
    __name__,
    url_prefix="/api/v1/charge-imports",
    description="Charge files (CSV, one row per service line) imported as claims: all or nothing, once per "
    "file. Layout: docs/charge-import.md.",
)


class ImportArgsSchema(Schema):
    dry_run = StrictBoolean(
        load_default=False, metadata={"description": "check and preview the rows; nothing is imported"}
    )
    practice = PublicId(
        load_default=None, metadata={"description": "the practice's id; default: the only practice"}
    )


class PreviewFindingSchema(Schema):
    rule_id = fields.String(metadata={"example": "DX_RELEASE"})
    severity = fields.String(metadata={"enum": ["error", "warning", "info"]})
    message = fields.String()
    column = fields.String(allow_none=True, metadata={"description": "the CSV column it is about"})
    source = fields.String(
        metadata={"description": "claim, or the record it is about (practice, patient...)"}
    )


class PreviewRowSchema(Schema):
    """One CSV row as the service line it becomes."""

    line = StrictInteger(metadata={"description": "the row's line in the file (1 is the header)"})
    claim_ref = fields.String()
    line_number = StrictInteger(metadata={"description": "the line's number in its claim (LX01)"})
    service_date = fields.String(metadata={"format": "date"})
    procedure = fields.String()
    modifiers = fields.List(fields.String())
    units = fields.String()
    charge = fields.String(metadata={"example": "125.00"})
    charge_from_fee_schedule = fields.Boolean()
    diagnoses = fields.List(fields.String())
    claim_state = fields.String(metadata={"enum": ["ready", "draft"]})
    findings = fields.List(fields.Nested(PreviewFindingSchema))


class _CountsSchema(Schema):
    """What a file held: rows, claims and lines, ready and draft, the total charge."""

    rows = StrictInteger()
    claims = StrictInteger()
    lines = StrictInteger()
    ready = StrictInteger()
    draft = StrictInteger()
    total_charge = fields.String(metadata={"example": "1234.50"})
    charges_from_fee_schedule = StrictInteger()
    warnings = StrictInteger()


class ImportReportSchema(_CountsSchema):
    """What the import did (``imported``), would do (``dry_run``) or did before (``duplicate``)."""

    status = fields.String(metadata={"enum": ["imported", "dry_run", "duplicate"]})
    import_id = fields.String(allow_none=True, metadata={"description": "the charge import (null: dry run)"})
    sha256 = fields.String()
    size_bytes = StrictInteger()
    claim_ids = fields.List(
        fields.String(), metadata={"description": "the claims created (imported, duplicate)"}
    )
    preview = fields.List(
        fields.Nested(PreviewRowSchema), metadata={"description": "dry run: one entry per row"}
    )
    preview_omitted = StrictInteger(metadata={"description": "rows left out of the preview"})


class ImportedClaimSchema(Schema):
    id = fields.String()
    patient_control_number = fields.String()
    state = fields.String()
    total_charge = fields.String(metadata={"example": "125.00"})


class ChargeImportSchema(_CountsSchema):
    """One imported file: counts and totals when imported, and its claims' states now."""

    id = fields.String()
    sha256 = fields.String()
    created_at = fields.DateTime()
    created_by = fields.String(
        allow_none=True, metadata={"description": "user:<id>, token:<id> or system:<name>"}
    )
    states_now = fields.Dict(keys=fields.String(), values=StrictInteger())
    created_claims = fields.List(fields.Nested(ImportedClaimSchema))


class ChargeImportPageSchema(PageSchema):
    items = fields.List(fields.Nested(ChargeImportSchema), required=True)


def _example_csv() -> str:
    names = ",".join(
        c.name for c in COLUMNS if c.required or c.name in ("patient_account", "charge", "modifiers")
    )
    return f"{names}\nV1001,A-000123,2024-11-04,99214,E11.9:I10,25,175.00\n"


@blp.route("", methods=["POST"])
@mutation()
@blp.arguments(ImportArgsSchema, location="query")
@blp.response(201, ImportReportSchema)
@blp.doc(
    requestBody={
        "required": True,
        "description": "The charge file as the raw body: UTF-8 CSV (RFC 4180), header first (docs/charge-import.md).",
        "content": {CSV_CONTENT_TYPE: {"schema": {"type": "string"}, "example": _example_csv()}},
    }
)
@blp.alt_response(200, schema=ImportReportSchema, description="dry run, or the same file was imported before")
@blp.alt_response(413, description="the file exceeds CHARGE_IMPORT_MAX_BYTES")
@blp.alt_response(415, description="not text/csv")
@blp.alt_response(422, description="refused: errors names each line, column and rule; nothing was imported")
def import_charges(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Import a charge file as claims (ready when the scrub is clean, else draft), all or nothing.

    The same bytes again answer ``duplicate`` (200) and create nothing; ``dry_run=true``
    answers the per-row preview with the scrub's findings and imports nothing.
    """
    with rate_limit("RATE_LIMIT_UPLOAD"):
        report = charge_import.import_charges(
            db_session(),
            raw_body_stream(),
            max_bytes=charge_file_limit(),
            practice=args["practice"],
            dry_run=args["dry_run"],
        )
    return report.to_json_dict(), 201 if report.status == "imported" else 200


import_charges.accepts = (CSV_CONTENT_TYPE,)  # type: ignore[attr-defined]


@blp.route("", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, ChargeImportPageSchema)
def list_charge_imports(args: dict[str, Any]) -> dict[str, Any]:
    """Charge imports, newest first (cursor pages; the claims are listed on each import)."""
    session = db_session()
    page = charge_import.list_charge_imports(session, limit=args["limit"], cursor=args["cursor"])
    return {
        "items": [charge_import.charge_import_to_json(session, r, with_claims=False) for r in page.items],
        "next_cursor": page.next_cursor,
    }


@blp.route("/<string:import_id>", methods=["GET"])
@blp.response(200, ChargeImportSchema)
@blp.alt_response(404, description="no such charge import")
def get_charge_import(import_id: str) -> dict[str, Any]:
    """One import: counts and totals, its claims' states now, and the claims it created."""
    session = db_session()
    return charge_import.charge_import_to_json(session, charge_import.get_charge_import(session, import_id))
