"""A FHIR R4 face over the server's own records, under ``/fhir/R4``.

Resources are built and checked with the ``fhir.resources.R4B`` models (never the
package's R5 default). Every mapping (837 ↔ Claim, 277CA ↔ ClaimResponse, 835 ↔
ClaimResponse / ExplanationOfBenefit in the CARIN Blue Button professional shape,
835 payment ↔ PaymentReconciliation, statements ↔ Invoice, 270/271 ↔
CoverageEligibilityRequest/Response, the audit log ↔ AuditEvent) is written down in
one table in ``docs/fhir-mapping.md``; the modules here follow that table.

``register(app)`` installs the blueprint and the hook that answers every error under
``/fhir`` (including the policy hook's 401/403) as an OperationOutcome.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from claims_server.fhir.outcome import problem_to_outcome
    from claims_server.fhir.views import blp

    app.register_blueprint(blp)
    app.after_request(problem_to_outcome)
