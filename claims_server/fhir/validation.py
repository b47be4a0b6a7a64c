"""One validation for every resource we accept and every resource we emit.

First the ``fhir.resources.R4B`` model (structure, types, cardinality; the package's
default R5 models would accept R4 claims with required elements missing), then the
required code bindings the models leave unchecked (``BINDINGS``: FHIR R4 value sets
whose binding strength is *required*, e.g. Claim.status in fm-status). Every problem
becomes an :class:`~claims_server.fhir.outcome.Issue` whose ``expression`` is the
FHIRPath of the bad element (``Claim.diagnosis[0].diagnosisCodeableConcept``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from claims_server.fhir.outcome import FhirError, Issue

FM_STATUS = frozenset({"active", "cancelled", "draft", "entered-in-error"})  # fm-status
EOB_STATUS = FM_STATUS  # explanationofbenefit-status has the same four codes
CLAIM_USE = frozenset({"claim", "preauthorization", "predetermination"})  # claim-use
OUTCOME = frozenset({"queued", "complete", "error", "partial"})  # remittance-outcome
PURPOSE = frozenset({"auth-requirements", "benefits", "discovery", "validation"})
GENDER = frozenset({"male", "female", "other", "unknown"})  # administrative-gender
INVOICE_STATUS = frozenset({"draft", "issued", "balanced", "cancelled", "entered-in-error"})
AUDIT_ACTION = frozenset({"C", "R", "U", "D", "E"})
AUDIT_OUTCOME = frozenset({"0", "4", "8", "12"})
BUNDLE_TYPE = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
HTTP_VERB = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
SEARCH_MODE = frozenset({"match", "include", "outcome"})
ISSUE_SEVERITY = frozenset({"fatal", "error", "warning", "information"})
PUBLICATION_STATUS = frozenset({"draft", "active", "retired", "unknown"})

#: resourceType -> {dotted path: allowed codes}; lists along the path are walked.
BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "Patient": {"gender": GENDER},
    "Coverage": {"status": FM_STATUS},
    "Claim": {"status": FM_STATUS, "use": CLAIM_USE},
    "ClaimResponse": {"status": FM_STATUS, "use": CLAIM_USE, "outcome": OUTCOME},
    "ExplanationOfBenefit": {"status": EOB_STATUS, "use": CLAIM_USE, "outcome": OUTCOME},
    "CoverageEligibilityRequest": {"status": FM_STATUS, "purpose": PURPOSE},
    "CoverageEligibilityResponse": {"status": FM_STATUS, "purpose": PURPOSE, "outcome": OUTCOME},
    "Invoice": {"status": INVOICE_STATUS},
    "PaymentReconciliation": {"status": FM_STATUS, "outcome": OUTCOME},
    "AuditEvent": {"action": AUDIT_ACTION, "outcome": AUDIT_OUTCOME},
    "Bundle": {"type": BUNDLE_TYPE, "entry.request.method": HTTP_VERB, "entry.search.mode": SEARCH_MODE},
    "OperationOutcome": {"issue.severity": ISSUE_SEVERITY},
    "CapabilityStatement": {"status": PUBLICATION_STATUS},
}


def _walk(node: Any, parts: list[str], expression: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, parts, f"{expression}[{index}]")
        return
    if not parts:
        yield expression, node
        return
    if isinstance(node, dict) and parts[0] in node:
        yield from _walk(node[parts[0]], parts[1:], f"{expression}.{parts[0]}")


def _binding_issues(data: dict[str, Any], prefix: str) -> list[Issue]:
    issues = []
    for path, allowed in BINDINGS.get(data.get("resourceType", ""), {}).items():
        for expression, value in _walk(data, path.split("."), prefix):
            if str(value) not in allowed:
                # The element and the allowed codes only: the value itself may be PHI.
                issues.append(
                    Issue(
                        f"{expression}: not a code of the required value set ({', '.join(sorted(allowed))})",
                        "code-invalid",
                        expression,
                        rule="required-binding",
                    )
                )
    if data.get("resourceType") == "Bundle":
        for index, entry in enumerate(data.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                issues += _binding_issues(resource, f"{prefix}.entry[{index}].resource")
    return issues


def _empty_issues(node: Any, expression: str) -> list[Issue]:
    """FHIR's ele-1: no element may be empty (``[]``, ``{}``, ``""``); R4B's models let them pass."""
    if node in ([], {}, ""):
        return [Issue(f"{expression}: an element must not be empty", "invariant", expression, rule="ele-1")]
    if isinstance(node, dict):
        return [i for key, value in node.items() for i in _empty_issues(value, f"{expression}.{key}")]
    if isinstance(node, list):
        return [i for index, value in enumerate(node) for i in _empty_issues(value, f"{expression}[{index}]")]
    return []


def _expression(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and part != "root":
            out += f".{part}"
    return out


def _model_issues(exc: pydantic.ValidationError, prefix: str) -> list[Issue]:
    issues = []
    for err in exc.errors():
        expression = _expression(prefix, tuple(err.get("loc") or ()))
        kind = str(err.get("type", ""))
        if "missing" in kind:
            code, message = "required", "a required element is missing"
        elif "extra" in kind:
            code, message = "structure", "this element is not part of the resource"
        else:
            code, message = "value", str(err.get("msg", "invalid value")).split("\n")[0][:200]
        # The input value is never echoed: it may be PHI.
        issues.append(Issue(f"{expression}: {message}", code, expression, rule=kind[:64] or None))
    return issues


def validate_resource(data: Any, *, expected: str | None = None, prefix: str | None = None) -> dict[str, Any]:
    """``data`` checked against R4B and the required bindings; returns it, or raises 422 naming each element."""
    if not isinstance(data, dict):
        raise FhirError(422, [Issue("a resource must be a JSON object", "structure", prefix)])
    resource_type = data.get("resourceType")
    # Until resourceType is known to be an R4 type, the expression does not repeat it either.
    where = prefix or expected or "Resource"
    if not isinstance(resource_type, str) or not resource_type:
        raise FhirError(422, [Issue("resourceType is missing", "required", f"{where}.resourceType")])
    if expected is not None and resource_type != expected:
        raise FhirError(422, [Issue(f"expected a {expected}", "invalid", f"{where}.resourceType")])
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        raise FhirError(
            422, [Issue("not an R4 resource type", "not-supported", f"{where}.resourceType")]
        ) from None
    where = prefix or resource_type
    issues: list[Issue] = []
    try:
        model.model_validate(data)
    except pydantic.ValidationError as exc:
        issues += _model_issues(exc, where)
    issues += _binding_issues(data, where)
    issues += _empty_issues(data, where)
    if issues:
        raise FhirError(422, issues)
    return data
