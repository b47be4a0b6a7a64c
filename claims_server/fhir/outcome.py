"""OperationOutcome: how every error under ``/fhir`` is answered (never problem+json there).

Views and mapping code raise :class:`FhirError` with issues that name the bad element
as a FHIRPath ``expression``. Errors raised elsewhere (the policy hook's 401/403, the
service layer's ``ApiError``, Werkzeug's 404/405/413) are answered as problem+json by
the app's handlers; :func:`problem_to_outcome`, an ``after_request`` hook, rewrites
those bodies into OperationOutcomes for paths under ``/fhir`` with the same status, so
the policy hook stays the one place that decides access (deny by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Response, request

from claims_server.errors import PROBLEM_JSON

FHIR_JSON = "application/fhir+json"

#: HTTP status -> OperationOutcome.issue.code (http://hl7.org/fhir/issue-type).
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


@dataclass
class Issue:
    """One OperationOutcome.issue; ``rule`` and ``hint`` come from the scrubber or our checks."""

    diagnostics: str
    code: str = "invalid"
    expression: str | None = None
    severity: str = "error"
    rule: str | None = None
    hint: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.rule or self.hint:
            details: dict[str, Any] = {}
            if self.rule:
                details["coding"] = [{"system": RULE_SYSTEM, "code": self.rule}]
            if self.hint:
                details["text"] = self.hint
            issue["details"] = details
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


#: The code system of our rule ids (scrubber rules, FHIR facade checks) in issue.details.
RULE_SYSTEM = "https://claims-server.dev/fhir/CodeSystem/rule"


@dataclass
class FhirError(Exception):
    """An error answered with an OperationOutcome; nothing the request did is kept."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)


def error(
    status: int, diagnostics: str, *, expression: str | None = None, code: str | None = None
) -> FhirError:
    return FhirError(status, [Issue(diagnostics, code or _ISSUE_CODES.get(status, "exception"), expression)])


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON answer; ``body`` has been validated by the caller (see validation.py)."""
    response = Response(json.dumps(body, default=_json_default), status=status, mimetype=FHIR_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        # FHIR decimals are JSON numbers; amounts here have at most two places, so the
        # shortest float repr ("125.1") is exact, as fhir.resources itself writes them.
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def outcome_response(exc: FhirError) -> Response:
    return fhir_response(operation_outcome(exc.issues), exc.status)


def problem_to_outcome(response: Response) -> Response:
    """after_request: under /fhir, a problem+json answer becomes an OperationOutcome."""
    if not request.path.startswith("/fhir/") or response.mimetype != PROBLEM_JSON:
        return response
    try:
        problem = json.loads(response.get_data(as_text=True))
    except ValueError:
        problem = {}
    status = response.status_code
    code = _ISSUE_CODES.get(status, "exception")
    issues = [
        Issue(
            str(e.get("message") or problem.get("detail") or "error"),
            code,
            e.get("field") or None,
            rule=e.get("rule"),
        )
        for e in problem.get("errors") or []
        if isinstance(e, dict)
    ]
    issues.insert(0, Issue(str(problem.get("detail") or response.status), code))
    response.set_data(json.dumps(operation_outcome(issues)))
    response.mimetype = FHIR_JSON
    return response
