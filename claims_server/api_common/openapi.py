"""The OpenAPI document's error half, declared once for every operation.

Every error the API answers is ``application/problem+json`` (``claims_server.errors``), so
the document says so in one place instead of in each view:

- :class:`ProblemSchema` is the one error body (RFC 9457 ``type``, ``title``, ``status``,
  ``detail``, ``instance``, plus ``request_id`` and the ``errors`` list naming each field and
  rule). Problems may carry a few extra members (``limit_bytes``, ``findings``...), so the
  schema admits additional properties.
- :class:`ClaimsApi` registers flask-smorest's per-status and default error responses with
  that schema under ``application/problem+json``.
- :class:`ProblemResponsesPlugin` rewrites, as each path is added to the document, every
  4xx/5xx response a view declares with ``@blp.alt_response(...)`` (often a description
  only) to the same content, and marks the operations anyone may call (``PUBLIC`` in the
  policy table) as needing no credentials.

Views therefore document only their success bodies; ``tests/integration/test_health_openapi.py``
checks that every 4xx/5xx of every operation is problem+json and every route is documented.
"""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields

from claims_server.errors import PROBLEM_JSON

PROBLEM_SCHEMA_NAME = "Problem"
PROBLEM_REF = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"}


class ProblemErrorSchema(Schema):
    """One reason a request was refused: the field (dotted path), where it was, the rule."""

    class Meta:
        unknown = INCLUDE

    field = fields.String(allow_none=True, metadata={"example": "lines.0.charge"})
    location = fields.String(metadata={"example": "json"})
    rule = fields.String(metadata={"example": "format"})
    code = fields.String()
    message = fields.String(required=True, metadata={"example": 'must be a string such as "125.00"'})


class ProblemSchema(Schema):
    """RFC 9457 problem details, with the request id and the fields that were refused."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"format": "uri"})
    title = fields.String(required=True)
    status = fields.Integer(required=True, metadata={"minimum": 400, "maximum": 599})
    detail = fields.String(required=True)
    instance = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    errors = fields.List(fields.Nested(ProblemErrorSchema))


def problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}


def dict_property_names(self: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """An apispec attribute function: ``propertyNames`` for a ``fields.Dict`` whose keys are
    checked (apispec documents only the values), so the document refuses the keys the field does."""
    keys = getattr(field, "key_field", None)
    if not isinstance(field, fields.Dict) or keys is None:
        return {}
    checks = {k: v for k, v in self.field2property(keys).items() if k in _KEY_KEYWORDS}
    return {"propertyNames": checks} if checks else {}


_KEY_KEYWORDS = ("pattern", "minLength", "maxLength", "enum")


class ClaimsApi(Api):
    """flask-smorest's ``Api`` whose error responses are problem+json with :class:`ProblemSchema`."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *args: Any, **kwargs: Any) -> None:
        super()._init_spec(*args, **kwargs)
        self.ma_plugin.converter.add_attribute_function(dict_property_names)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (see the Problem schema)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def _is_error(status: str) -> bool:
    return status == "default" or (status[:1] in "45" and status.isdigit())


def idempotency_key_required(view: Any) -> Any:
    """Mark a view that refuses a request without ``Idempotency-Key`` (money postings); the
    document then lists the header as required. Place it under ``@mutation(idempotent=True)``."""
    view.idempotency_key = "required"
    return view


def _idempotency_parameter(required: bool) -> dict[str, Any]:
    from claims_server.api_common.transactions import IDEMPOTENCY_HEADER, KEY_MAX_LENGTH, KEY_PATTERN

    return {
        "in": "header",
        "name": IDEMPOTENCY_HEADER,
        "required": required,
        "description": "Makes a retry safe: the same key and body replay the first answer "
        "(Idempotent-Replayed: true); the same key with another body is a 422.",
        "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
    }


class ProblemResponsesPlugin(BasePlugin):
    """Every error response problem+json; public operations need no credentials; views that
    take an ``Idempotency-Key`` (``mutation(idempotent=True)``) document the header."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.spec: Any = None

    def init_spec(self, spec: Any) -> None:
        super().init_spec(spec)
        self.spec = spec

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        """A schema's ``openapi_extra`` (JSON Schema keywords marshmallow fields cannot say, such
        as the ``anyOf`` of a ``@validates_schema`` rule) joins its component."""
        extra = getattr(kwargs.get("schema"), "openapi_extra", None)
        return dict(extra) if extra else None

    def _json_body_may_be_omitted(self, body: dict[str, Any]) -> bool:
        """True when the body is JSON whose schema asks for nothing: webargs reads a missing body
        as ``{}``, which such a schema accepts, so the document must not call the body required."""
        content = body.get("content") or {}
        if set(content) != {"application/json"}:
            return False
        schema = content["application/json"].get("schema") or {}
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if ref and self.spec is not None:
            name = ref.rsplit("/", 1)[-1]
            components = self.spec.components
            schema = components.schemas.get(name) or components.schemas_lazy.get(name) or {}
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return False
        return not any(schema.get(key) for key in ("required", "anyOf", "oneOf", "allOf", "minProperties"))

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        from claims_server.security.policy import rule_for

        endpoint = getattr(kwargs.get("rule"), "endpoint", None)
        policy_rule = rule_for(endpoint)
        view = self.app.view_functions.get(endpoint) if self.app is not None and endpoint else None
        idempotency = getattr(view, "idempotency_key", None)
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            if policy_rule is not None and policy_rule.public:
                operation["security"] = []
            body = operation.get("requestBody")
            if isinstance(body, dict) and body.get("required") and self._json_body_may_be_omitted(body):
                body["required"] = False
            if idempotency:
                operation.setdefault("parameters", []).append(
                    _idempotency_parameter(idempotency == "required")
                )
            for status, response in (operation.get("responses") or {}).items():
                if not _is_error(str(status)) or not isinstance(response, dict):
                    continue  # a string is a reference to a component response (problem+json already)
                response.setdefault("description", http.HTTPStatus(int(status)).phrase)
                response["content"] = problem_content()


def register_security_schemes(api: Api) -> None:
    """How callers authenticate: a bearer token (session, integration or patient-link) or the cookie."""
    from claims_server.security.authn import SESSION_COOKIE

    api.spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A staff session token (POST /api/v1/auth/login), an integration API token "
            "or a patient-link session token (POST /api/v1/patient-link/verify).",
        },
    )
    api.spec.components.security_scheme(
        "session_cookie", {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE}
    )


#: An amount as the API writes it (``cents_to_money``): always two decimals, negative for credits.
SIGNED_MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"


def money_out(**kwargs: Any) -> fields.String:
    """A money string in a response (balances and credits can be negative)."""
    metadata = {"pattern": SIGNED_MONEY_PATTERN, "example": "125.00", **kwargs.pop("metadata", {})}
    return fields.String(metadata=metadata, **kwargs)


def public_id_out(**kwargs: Any) -> fields.String:
    """A ``public_id`` in a response (32 lowercase hex characters)."""
    return fields.String(metadata={"pattern": "^[0-9a-f]{32}$"}, **kwargs)
