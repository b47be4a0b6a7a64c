"""``POST /api/v1/edi/x12``: send us an X12 file, get our 999 (or TA1) back at once."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from claims_server.app import db_session
from claims_server.edi_inbound import services
from claims_server.security.uploads import X12_BODY_SCHEMA, X12_CONTENT_TYPES, receive_x12_upload

blp = Blueprint(
    "edi_inbound",
    __name__,
    url_prefix="/api/v1/edi",
    description="Receive X12 files from integrations and acknowledge them synchronously.",
)

_EXAMPLE_999 = (
    "ISA*00*          *00*          *ZZ*CLAIMSSERVER   *ZZ*SENDER         *260302*0900*^*00501*000000042*0*P*:~"
    "GS*FA*CLAIMSSERVER*SENDER*20260302*0900*42*X*005010X231A1~ST*999*0001*005010X231A1~"
    "AK1*HC*17*005010X222A1~AK2*837*0001*005010X222A1~IK5*A~AK9*A*1*1*1~SE*6*0001~GE*1*42~"
    "IEA*1*000000042~"
)


@blp.route("/x12", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "description": "One X12 5010 interchange (starts with ISA), sent as the raw body.",
        "content": {
            media: {"schema": dict(X12_BODY_SCHEMA), "example": "ISA*00*          *00*  ...~IEA*1*000000017~"}
            for media in X12_CONTENT_TYPES
        },
    },
    responses={
        "200": {
            "description": "Our acknowledgment: a 999 per functional group, or a TA1 when an "
            "interchange envelope is bad. The header X-Acknowledgment says which; "
            "X-Accepted says whether everything was accepted.",
            "content": {"application/edi-x12": {"schema": {"type": "string"}, "example": _EXAMPLE_999}},
        },
        "400": {"description": "the body holds no readable interchange (problem+json, with the reason)"},
        "413": {"description": "the file exceeds MAX_UPLOAD_BYTES"},
        "415": {"description": "not application/edi-x12, text/plain or application/octet-stream"},
        "422": {"description": "the body does not start with ISA"},
    },
)
def post_x12() -> Response:
    """Store the file with its SHA-256, validate it, and answer with our 999 or TA1."""
    upload = receive_x12_upload()
    session = db_session()
    try:
        ack = services.acknowledge_upload(session, upload.content, stored_name=upload.stored_name)
        session.commit()
    except services.NotAnInterchange:
        session.commit()  # keep the received file and why it failed
        raise
    except BaseException:
        session.rollback()
        raise
    response = Response(ack.text, status=200, mimetype="application/edi-x12")
    response.headers["X-Acknowledgment"] = ack.kind
    response.headers["X-Accepted"] = "true" if ack.accepted else "false"
    response.headers["X-EDI-File"] = ack.edi_file_public_id
    return response


post_x12.accepts = X12_CONTENT_TYPES  # type: ignore[attr-defined]
