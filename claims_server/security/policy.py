"""THE access policy: one table of endpoint x role, enforced before every request.

HIPAA 164.312(a)(1) (access control). ``claims_server.security.enforce`` looks up the
request's endpoint here before any view runs: an endpoint missing from ``POLICY`` is
refused (deny by default), and ``tests/integration/security/test_policy.py`` fails
when any route of the app has no entry.

How to add a route
------------------
1. Find (or add) the section of your blueprint below; keys are Flask endpoint names,
   ``"<blueprint name>.<view function name>"`` (``flask routes`` shows them; flask-smorest
   MethodViews are ``"<blueprint>.<ClassName>"``).
2. Map it to ``allow(role, ...)``; add ``scope="..."`` when integration tokens may call
   it (an integration token needs both the ``integration`` role in the rule and that
   scope). Use ``PUBLIC`` only for endpoints that must work signed out.
3. Ownership (a patient sees only their own rows, an integration only its own) is
   not decided here but in the service, with ``claims_server.security.ownership``.

Roles: biller, billing_supervisor, auditor, admin, integration (API tokens) and
patient (statement links, no account).
"""

from __future__ import annotations

from dataclasses import dataclass

from claims_server.security.principal import ALL_ROLES, PATIENT_ROLE

BILLER = "biller"
SUPERVISOR = "billing_supervisor"
AUDITOR = "auditor"
ADMIN = "admin"
INTEGRATION = "integration"
PATIENT = PATIENT_ROLE

#: Everyone who works the billing (reads and changes claims, patients, payments).
BILLING_STAFF = (BILLER, SUPERVISOR, ADMIN)
#: Every staff role, including read-only auditors.
ALL_STAFF = (BILLER, SUPERVISOR, AUDITOR, ADMIN)


@dataclass(frozen=True)
class Rule:
    """Who may call an endpoint: ``public``, or a role in ``roles`` (tokens also need ``scope``)."""

    roles: frozenset[str] = frozenset()
    scope: str | None = None
    public: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ALL_ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) in policy: {', '.join(sorted(unknown))}")
        if INTEGRATION in self.roles and not self.scope:
            raise ValueError("a rule that admits integration tokens must name a scope")


PUBLIC = Rule(public=True)


def allow(*roles: str, scope: str | None = None) -> Rule:
    return Rule(frozenset(roles), scope)


POLICY: dict[str, Rule] = {
    # --- health, API docs, static files (claims_server.health, flask-smorest, Flask) --------
    "health.healthz": PUBLIC,
    "api-docs.openapi_json": PUBLIC,
    "static": PUBLIC,
    # --- practice and providers (claims_server.practice.views, /api/v1) ----------------------
    "practice.list_practices": allow(*ALL_STAFF, INTEGRATION, scope="practice:read"),
    "practice.get_practice": allow(*ALL_STAFF, INTEGRATION, scope="practice:read"),
    "practice.create_practice": allow(SUPERVISOR, ADMIN),
    "practice.update_practice": allow(SUPERVISOR, ADMIN),
    "practice.list_providers": allow(*ALL_STAFF, INTEGRATION, scope="practice:read"),
    "practice.get_provider": allow(*ALL_STAFF, INTEGRATION, scope="practice:read"),
    "practice.create_provider": allow(SUPERVISOR, ADMIN),
    "practice.update_provider": allow(SUPERVISOR, ADMIN),
    # The fee schedule (charge entry's default charges): billers read, supervisors set prices.
    "practice.get_fee_schedule": allow(*ALL_STAFF, INTEGRATION, scope="practice:read"),
    "practice.put_fee_schedule": allow(SUPERVISOR, ADMIN),
    "practice.delete_fee_schedule_entry": allow(SUPERVISOR, ADMIN),
    # --- payers and clearinghouse routes (claims_server.payers.views) ------------------------
    "payers.list_payers": allow(*ALL_STAFF, INTEGRATION, scope="payers:read"),
    "payers.get_payer": allow(*ALL_STAFF, INTEGRATION, scope="payers:read"),
    "payers.create_payer": allow(SUPERVISOR, ADMIN),
    "payers.update_payer": allow(SUPERVISOR, ADMIN),
    "payers.list_routes": allow(SUPERVISOR, AUDITOR, ADMIN),
    "payers.get_route": allow(SUPERVISOR, AUDITOR, ADMIN),
    "payers.create_route": allow(ADMIN),
    "payers.update_route": allow(ADMIN),
    # --- patients and coverages (claims_server.patients.views): PHI --------------------------
    "patients.list_patients": allow(*ALL_STAFF),
    "patients.search_patients": allow(*ALL_STAFF),
    "patients.get_patient": allow(*ALL_STAFF),
    "patients.create_patient": allow(*BILLING_STAFF, INTEGRATION, scope="patients:write"),
    "patients.update_patient": allow(*BILLING_STAFF),
    "patients.list_coverages": allow(*ALL_STAFF),
    "patients.get_coverage": allow(*ALL_STAFF),
    "patients.create_coverage": allow(*BILLING_STAFF, INTEGRATION, scope="patients:write"),
    "patients.update_coverage": allow(*BILLING_STAFF),
    # the schedule (claims_server.claims.encounters): an EHR integration books visits
    "patients.list_patient_encounters": allow(*ALL_STAFF),
    "patients.create_encounter": allow(*BILLING_STAFF, INTEGRATION, scope="patients:write"),
    "patients.list_encounters": allow(*ALL_STAFF),
    "patients.get_encounter": allow(*ALL_STAFF),
    "patients.delete_encounter": allow(*BILLING_STAFF),
    # --- claims (claims_server.claims.views) -------------------------------------------------
    "claims.list_claims": allow(*ALL_STAFF),
    "claims.get_claim": allow(*ALL_STAFF),
    "claims.list_claim_notes": allow(*ALL_STAFF),  # as the claim screen's history shows them
    "claims.create_claim": allow(*BILLING_STAFF, INTEGRATION, scope="claims:write"),
    "claims.validate_claim": allow(*BILLING_STAFF, INTEGRATION, scope="claims:write"),
    "claims.update_claim": allow(*BILLING_STAFF),
    "claims.transition_ready": allow(*BILLING_STAFF),
    "claims.transition_return_to_draft": allow(*BILLING_STAFF),
    # Correcting a front-end rejection (999/277CA: never adjudicated) is routine biller work;
    # reopening a denied (adjudicated) claim is a supervisor's decision. The UI's "save and
    # resubmit" of a rejected claim checks claims.transition_correct (ui/claims.py).
    "claims.transition_correct": allow(*BILLING_STAFF),
    "claims.transition_reopen": allow(SUPERVISOR, ADMIN),
    "claims.transition_close": allow(SUPERVISOR, ADMIN),
    # --- charge import: charge CSVs as claims (claims_server.claims.charge_import_views). Billers
    # import; an integration (an EHR's export) may too, and reads back only its own imports.
    "charge_imports.import_charges": allow(*BILLING_STAFF, INTEGRATION, scope="claims:write"),
    "charge_imports.list_charge_imports": allow(*ALL_STAFF, INTEGRATION, scope="claims:write"),
    "charge_imports.get_charge_import": allow(*ALL_STAFF, INTEGRATION, scope="claims:write"),
    "ui.charge_imports": allow(*ALL_STAFF),  # charge_imports.list_charge_imports (and the form)
    "ui.charge_import": allow(*ALL_STAFF),  # charge_imports.get_charge_import
    "ui.charge_import_check": allow(*BILLING_STAFF),  # charge_imports.import_charges?dry_run=true
    "ui.charge_import_run": allow(*BILLING_STAFF),  # charge_imports.import_charges
    # --- end charge import
    # --- auth (claims_server.security.views, /api/v1/auth) -----------------------------------
    "auth.login": PUBLIC,
    "auth.logout": allow(*ALL_STAFF),
    "auth.whoami": allow(*ALL_STAFF, INTEGRATION, PATIENT, scope="auth:read"),
    "auth.change_password": allow(*ALL_STAFF),
    "auth.totp_setup": allow(*ALL_STAFF),
    "auth.totp_confirm": allow(*ALL_STAFF),
    "auth.create_user": allow(ADMIN),
    "auth.change_role": allow(ADMIN),
    "auth.create_token": allow(ADMIN),
    "auth.list_tokens": allow(ADMIN, INTEGRATION, scope="auth:read"),
    "auth.get_token": allow(ADMIN, INTEGRATION, scope="auth:read"),
    "auth.revoke_token": allow(ADMIN),
    # --- patient links (claims_server.security.views) ----------------------------------------
    "auth.create_patient_link": allow(*BILLING_STAFF),
    "patient_link.verify": PUBLIC,
    "patient_link.statements": allow(PATIENT),
    "patient_link.statement": allow(PATIENT),
    # --- audit (claims_server.security.views) ------------------------------------------------
    "auth.audit_events": allow(AUDITOR, ADMIN),
    # --- submission-pipeline: X12 posted by integrations (claims_server.edi_inbound.views) ---
    "edi_inbound.post_x12": allow(*BILLING_STAFF, INTEGRATION, scope="edi:write"),
    # --- end submission-pipeline -------------------------------------------------------------
    # --- sending claims: batch and upload ready claims, read batches (claims_server.submission.views)
    "batches.send_batches": allow(*BILLING_STAFF),
    "batches.list_batches": allow(*ALL_STAFF),
    "batches.get_batch": allow(*ALL_STAFF),
    "batches.get_batch_file": allow(*ALL_STAFF),  # a batch's raw file (PHI), audited like ui.file_download
    "ui.send": allow(*ALL_STAFF),  # the ready claims (batches.send_batches?dry_run shows the same)
    "ui.send_post": allow(*BILLING_STAFF),  # batches.send_batches
    "ui.batches": allow(*ALL_STAFF),  # batches.list_batches
    "ui.batch": allow(*ALL_STAFF),  # batches.get_batch, with its claims (a PHI view)
    # --- end sending claims
    # --- remit-work: work queue (claims_server.workqueue.views) -------------------------------
    "workqueue.queue_counts": allow(*ALL_STAFF),
    "workqueue.list_items": allow(*ALL_STAFF),
    "workqueue.get_item": allow(*ALL_STAFF),
    "workqueue.assign_item": allow(*BILLING_STAFF),
    "workqueue.snooze_item": allow(*BILLING_STAFF),
    "workqueue.comment_item": allow(*BILLING_STAFF),
    "workqueue.resolve_item": allow(*BILLING_STAFF),
    "workqueue.unpaid": allow(*ALL_STAFF),
    "workqueue.sweep": allow(SUPERVISOR, ADMIN),
    # follow-up notes (claims_server.workqueue.notes_views): billing staff write, auditors read
    "follow_up_notes.list_claim_notes": allow(*ALL_STAFF),
    "follow_up_notes.add_claim_note": allow(*BILLING_STAFF),
    "follow_up_notes.list_patient_notes": allow(*ALL_STAFF),
    "follow_up_notes.add_patient_note": allow(*BILLING_STAFF),
    "follow_up_notes.list_item_notes": allow(*ALL_STAFF),
    "follow_up_notes.add_item_note": allow(*BILLING_STAFF),
    "follow_up_notes.list_follow_ups": allow(*ALL_STAFF),
    # saved work-queue filters (claims_server.workqueue.saved_filters_views): each user's own
    "saved_filters.list_saved_filters": allow(*ALL_STAFF),
    "saved_filters.save_filter": allow(*ALL_STAFF),
    "saved_filters.delete_saved_filter": allow(*ALL_STAFF),
    # --- remit-work: corrections, appeals, next-payer claims (claims_server.corrections.views)
    "corrections.create_replacement": allow(*BILLING_STAFF),
    "corrections.create_void": allow(SUPERVISOR, ADMIN),
    "corrections.create_next_payer": allow(*BILLING_STAFF),
    "corrections.open_appeal": allow(*BILLING_STAFF),
    "corrections.get_appeal": allow(*ALL_STAFF),
    "corrections.list_appeals": allow(*ALL_STAFF),
    "corrections.open_next_level": allow(*BILLING_STAFF),
    "corrections.update_appeal": allow(*BILLING_STAFF),
    "corrections.submit_appeal": allow(*BILLING_STAFF),
    "corrections.decide_appeal": allow(*BILLING_STAFF),
    # --- remit-work: reports (claims_server.reports.views) ------------------------------------
    "reports.ar_aging": allow(*ALL_STAFF),
    "reports.kpis": allow(*ALL_STAFF),
    # --- end remit-work -----------------------------------------------------------------------
    # --- remit-posting: 835 remittances (claims_server.remittance.views) ------------------------
    "remittances.upload_remittance": allow(*BILLING_STAFF, INTEGRATION, scope="remittances:write"),
    "remittances.list_remittances": allow(*ALL_STAFF, INTEGRATION, scope="remittances:read"),
    "remittances.get_remittance": allow(*ALL_STAFF, INTEGRATION, scope="remittances:read"),
    # claim screen: one claim's remittance detail (claims_server.remittance.claim_detail_views)
    "claim_remittances.get_claim_remittance_detail": allow(*ALL_STAFF),
    # --- end remit-posting --------------------------------------------------------------------
    # --- possible duplicates: held adjudications and remittances (claims_server.remittance.held_views).
    # Deciding one moves money between unapplied payments and a claim: a supervisor's decision.
    "held_adjudications.list_held_adjudications": allow(*ALL_STAFF),
    "held_adjudications.decide_held_adjudication": allow(SUPERVISOR, ADMIN),
    "held_adjudications.decide_held_remittance": allow(SUPERVISOR, ADMIN),
    "ui.held_decision": allow(SUPERVISOR, ADMIN),  # held_adjudications.decide_held_adjudication
    # --- end possible duplicates
    # --- eligibility: 270/271 checks and estimates (claims_server.eligibility.views) ------------
    # Staff only (integrations could own checks through their patients' coverages, see
    # security.ownership, but no integration needs to run 270s yet).
    "eligibility.request_check": allow(*BILLING_STAFF),
    "eligibility.get_check": allow(*ALL_STAFF),
    "eligibility.get_summary": allow(*ALL_STAFF),
    "eligibility.estimate": allow(*BILLING_STAFF),
    # --- end eligibility ------------------------------------------------------------------------
    # --- statements-delivery: payments and plans (claims_server.payments.views) ------------------
    "payments.patient_balance": allow(*ALL_STAFF),
    "payments.record_payment": allow(*BILLING_STAFF),
    "payments.list_payments": allow(*ALL_STAFF),
    "payments.get_payment": allow(*ALL_STAFF),
    "payments.create_payment_plan": allow(*BILLING_STAFF),
    "payments.get_payment_plan": allow(*ALL_STAFF),
    "payments.cancel_payment_plan": allow(*BILLING_STAFF),
    "payments.check_payment_plans": allow(SUPERVISOR, ADMIN),
    # --- statements-delivery: the patient's own balance, payments, plans (patient link session)
    "patient_pay.balance": allow(PATIENT),
    "patient_pay.pay_statement": allow(PATIENT),
    "patient_pay.payment_plans": allow(PATIENT),
    "patient_statement.html": allow(PATIENT),
    "patient_statement.pdf": allow(PATIENT),
    # --- statements-delivery: statements, print batches, email (claims_server.statements.views)
    "statements.list_statements": allow(*ALL_STAFF),
    "statements.get_statement": allow(*ALL_STAFF),
    "statements.statement_pdf": allow(*ALL_STAFF),
    "statements.statement_html": allow(*ALL_STAFF),
    "statements.email_statement": allow(*BILLING_STAFF),
    "statements.create_print_batch": allow(*BILLING_STAFF),
    "statements.print_batch_file": allow(*BILLING_STAFF),
    "statements.start_run": allow(SUPERVISOR, ADMIN),
    "statements.get_run": allow(*ALL_STAFF),
    # --- end statements-delivery -----------------------------------------------------------------
    # --- statements: collection holds (claims_server.statements.views)
    "statements.list_holds": allow(*ALL_STAFF),
    "statements.release_hold": allow(SUPERVISOR, ADMIN),
    # --- end statements
    # --- portal: the patient pages at /pay (claims_server.portal.views); the link and the
    # birth-date check are public, everything after them needs the patient-link session.
    "portal.static": PUBLIC,
    "portal.index": PUBLIC,
    "portal.open_link": PUBLIC,
    "portal.verify": PUBLIC,
    "portal.statement": allow(PATIENT),
    "portal.statement_pdf": allow(PATIENT),
    "portal.statement_page": allow(PATIENT),
    "portal.pay": allow(PATIENT),
    "portal.receipt": allow(PATIENT),
    "portal.sign_out": allow(PATIENT),
    # --- end portal
    # --- fhir: the FHIR R4 facade (claims_server.fhir.views, /fhir/R4) ---------------------------
    # Reads are staff only, like the REST API's PHI reads (integrations own no rows to read back;
    # patient-link sessions are not served over FHIR). AuditEvent: auditors and admins only.
    "fhir.metadata": PUBLIC,
    "fhir.read": allow(*ALL_STAFF),
    "fhir.search": allow(*ALL_STAFF),
    "fhir.read_audit_event": allow(AUDITOR, ADMIN),
    "fhir.search_audit_events": allow(AUDITOR, ADMIN),
    "fhir.create_claim": allow(*BILLING_STAFF, INTEGRATION, scope="fhir:write"),
    "fhir.transaction": allow(*BILLING_STAFF, INTEGRATION, scope="fhir:write"),
    # --- end fhir --------------------------------------------------------------------------------
    # --- ui: the staff workspace (claims_server.ui), the same roles as the API each page mirrors
    "ui_root": PUBLIC,  # a redirect to /ui/
    "ui.static": PUBLIC,
    "ui.sign_in": PUBLIC,
    "ui.sign_out": allow(*ALL_STAFF),
    "ui.enrol": allow(*ALL_STAFF),
    "ui.enrol_start": allow(*ALL_STAFF),
    "ui.keepalive": allow(*ALL_STAFF),
    "ui.home": allow(*ALL_STAFF),
    "ui.queues": allow(*ALL_STAFF),  # workqueue.list_items
    "ui.queue_action": allow(*BILLING_STAFF),  # workqueue.assign_item / snooze_item (bulk too)
    "ui.save_queue_filter": allow(*ALL_STAFF),  # saved_filters.save_filter (the user's own)
    "ui.delete_queue_filter": allow(*ALL_STAFF),  # saved_filters.delete_saved_filter
    "ui.claims": allow(*ALL_STAFF),  # claims.list_claims
    "ui.claim": allow(*ALL_STAFF),  # claims.get_claim
    "ui.claim_save": allow(*BILLING_STAFF),  # claims.update_claim (+ transition_correct, transition_ready)
    "ui.claim_ready": allow(*BILLING_STAFF),  # claims.transition_ready
    "ui.claim_replacement": allow(*BILLING_STAFF),  # corrections.create_replacement
    "ui.claim_void": allow(SUPERVISOR, ADMIN),  # corrections.create_void
    "ui.claim_appeal": allow(*BILLING_STAFF),  # corrections.open_appeal
    # appeals (claims_server.ui.appeals): the list by deadline, one appeal and its changes
    "ui.appeals": allow(*ALL_STAFF),  # corrections.list_appeals
    "ui.appeal": allow(*ALL_STAFF),  # corrections.get_appeal
    "ui.appeal_save": allow(*BILLING_STAFF),  # corrections.update_appeal
    "ui.appeal_attachment_add": allow(*BILLING_STAFF),  # corrections.update_appeal
    "ui.appeal_attachment_remove": allow(*BILLING_STAFF),  # corrections.update_appeal
    "ui.appeal_submit": allow(*BILLING_STAFF),  # corrections.submit_appeal
    "ui.appeal_outcome": allow(*BILLING_STAFF),  # corrections.decide_appeal
    "ui.appeal_next_level": allow(*BILLING_STAFF),  # corrections.open_next_level
    "ui.claim_next_payer": allow(*BILLING_STAFF),  # corrections.create_next_payer
    # follow-up (claims_server.ui.followups): notes panel, a work item's page, My follow-ups
    "ui.claim_note": allow(*BILLING_STAFF),  # follow_up_notes.add_claim_note
    "ui.patient_note": allow(*BILLING_STAFF),  # follow_up_notes.add_patient_note
    "ui.work_item": allow(*ALL_STAFF),  # workqueue.get_item + follow_up_notes.list_item_notes
    "ui.work_item_note": allow(*BILLING_STAFF),  # follow_up_notes.add_item_note
    "ui.work_item_resolve": allow(*BILLING_STAFF),  # workqueue.resolve_item
    "ui.followups": allow(*ALL_STAFF),  # follow_up_notes.list_follow_ups
    # --- end ui
    # --- ui part 2: dashboard, remittances, files, patients (claims_server.ui), the API's roles
    "ui.dashboard": allow(*ALL_STAFF),  # reports.kpis / reports.ar_aging
    "ui.remittances": allow(*ALL_STAFF),  # remittances.list_remittances
    "ui.remittance": allow(*ALL_STAFF),  # remittances.get_remittance
    "ui.remittance_upload": allow(*BILLING_STAFF),  # remittances.upload_remittance (stores only)
    "ui.remittance_preview": allow(*BILLING_STAFF),  # remittances.upload_remittance?dry_run=true
    "ui.remittance_post": allow(*BILLING_STAFF),  # remittances.upload_remittance
    "ui.files": allow(*ALL_STAFF),  # file metadata and acknowledgments, no content
    "ui.file_download": allow(*ALL_STAFF),  # the raw file (PHI), audited like any PHI read
    "ui.patients": allow(*ALL_STAFF),  # the search form
    "ui.patient_search": allow(*ALL_STAFF),  # patients.search_patients
    "ui.patient": allow(*ALL_STAFF),  # patients.get_patient, payments.patient_balance, statements
    "ui.patient_payment": allow(*BILLING_STAFF),  # payments.record_payment
    # --- end ui part 2
    # --- write-offs: a claim's open balance written off (claims_server.ledger.views, claims_server.ui)
    # Billers up to WRITE_OFF_BILLER_LIMIT_CENTS per claim (checked in the service); reversing
    # a write-off is a supervisor's decision, like voiding a claim.
    "write_offs.create_write_off": allow(*BILLING_STAFF),
    "write_offs.list_write_offs": allow(*ALL_STAFF),
    "write_offs.reverse_write_off": allow(SUPERVISOR, ADMIN),
    "ui.claim_write_off": allow(*BILLING_STAFF),  # write_offs.create_write_off
    # approvals (claims_server.ledger.approval_views, ui/approvals.py): a write-off or refund
    # above the requester's limit; billers read and withdraw their own (checked in the view),
    # supervisors and admins decide (never their own: checked in the service).
    "approvals.list_approvals": allow(*ALL_STAFF),
    "approvals.get_approval": allow(*ALL_STAFF),
    "approvals.decide_approval": allow(SUPERVISOR, ADMIN),
    "approvals.withdraw_approval": allow(*BILLING_STAFF),
    "ui.approvals": allow(SUPERVISOR, ADMIN, AUDITOR),
    "ui.approval_decide": allow(SUPERVISOR, ADMIN),
    "ui.approval_withdraw": allow(*BILLING_STAFF),
    # --- end write-offs
    # --- credits: unmatched payments, credit balances, refunds (claims_server.remittance.unmatched_views,
    # claims_server.ledger.credit_views, claims_server.ui.unmatched / credits). Billers apply, return,
    # refund (up to REFUND_BILLER_LIMIT_CENTS; above it an approval request), transfer and hold; auditors read.
    "unmatched_payments.list_unmatched_payments": allow(*ALL_STAFF),
    "unmatched_payments.get_unmatched_payment": allow(*ALL_STAFF),
    "unmatched_payments.apply_unmatched_payment": allow(*BILLING_STAFF),
    "unmatched_payments.return_unmatched_payment": allow(*BILLING_STAFF),
    "credit_balances.list_credit_balances": allow(*ALL_STAFF),
    "credit_balances.get_credit_balance": allow(*ALL_STAFF),
    "credit_balances.refund_credit_balance": allow(*BILLING_STAFF),
    "credit_balances.transfer_credit_balance": allow(*BILLING_STAFF),
    "credit_balances.hold_credit_balance": allow(*BILLING_STAFF),
    "credit_balances.list_refunds": allow(*ALL_STAFF),
    "credit_balances.get_refund": allow(*ALL_STAFF),
    "ui.unmatched_list": allow(*ALL_STAFF),  # unmatched_payments.list_unmatched_payments
    "ui.unmatched": allow(*ALL_STAFF),  # unmatched_payments.get_unmatched_payment
    "ui.unmatched_apply": allow(*BILLING_STAFF),  # unmatched_payments.apply_unmatched_payment
    "ui.unmatched_return": allow(*BILLING_STAFF),  # unmatched_payments.return_unmatched_payment
    "ui.credits": allow(*ALL_STAFF),  # credit_balances.list_credit_balances, list_refunds
    "ui.credit": allow(*ALL_STAFF),  # credit_balances.get_credit_balance
    "ui.credit_refund": allow(*BILLING_STAFF),  # credit_balances.refund_credit_balance
    "ui.credit_transfer": allow(*BILLING_STAFF),  # credit_balances.transfer_credit_balance
    "ui.credit_hold": allow(*BILLING_STAFF),  # credit_balances.hold_credit_balance
    "ui.refund": allow(*ALL_STAFF),  # credit_balances.get_refund
    # --- end credits
    # --- charge entry (claims_server.ui.charges): keying claims is billing work; auditors read only
    "ui.charge_new": allow(*BILLING_STAFF),  # claims.create_claim (the screen, or the patient search)
    "ui.charge_patient_search": allow(*BILLING_STAFF),  # patients.search_patients
    "ui.charge_create": allow(*BILLING_STAFF),  # claims.create_claim
    "ui.charge_edit": allow(*BILLING_STAFF),  # claims.update_claim (the screen)
    "ui.charge_update": allow(*BILLING_STAFF),  # claims.update_claim (+ transition_correct, _ready)
    "ui.charge_check": allow(*BILLING_STAFF),  # claims.validate_claim
    "ui.code_lookup": allow(*ALL_STAFF),  # code sets and fee schedule labels: no PHI
    "ui.fee_schedule": allow(*ALL_STAFF),  # practice.get_fee_schedule
    "ui.fee_schedule_save": allow(SUPERVISOR, ADMIN),  # practice.put_fee_schedule
    "ui.fee_schedule_delete": allow(SUPERVISOR, ADMIN),  # practice.delete_fee_schedule_entry
    # --- end charge entry
    # --- scheduler: the periodic jobs (claims_server.scheduler.views, claims_server.ui.scheduler); job
    # names, times and counts only. Supervisors and admins run a job now; auditors may look.
    "scheduler.list_jobs": allow(SUPERVISOR, AUDITOR, ADMIN),
    "scheduler.get_job": allow(SUPERVISOR, AUDITOR, ADMIN),
    "scheduler.run_job": allow(SUPERVISOR, ADMIN),
    "ui.scheduler": allow(SUPERVISOR, AUDITOR, ADMIN),  # scheduler.list_jobs
    "ui.scheduler_run": allow(SUPERVISOR, ADMIN),  # scheduler.run_job
    # --- end scheduler
}


#: Every scope an integration token may hold: exactly the scopes the rules above name.
#: Token creation (API and CLI) refuses any other string; there is no wildcard scope.
TOKEN_SCOPES: tuple[str, ...] = tuple(sorted({rule.scope for rule in POLICY.values() if rule.scope}))


def rule_for(endpoint: str | None) -> Rule | None:
    """The rule of ``endpoint``; None means no entry, which enforcement refuses."""
    if endpoint is None:
        return None
    return POLICY.get(endpoint)
