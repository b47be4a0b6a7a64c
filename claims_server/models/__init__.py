"""The data model. Importing this package registers every table on ``Base.metadata``.

Modules by domain: ``practice`` (Practice, Provider), ``payers`` (Payer,
ClearinghouseRoute), ``patients`` (Patient, Coverage, Encounter), ``claims`` (Claim,
ClaimDiagnosis, ClaimNote, ServiceLine), ``submissions`` (SubmissionBatch, BatchClaim,
ControlNumberCounter, Interchange), ``edi_files`` (EdiFile, Ack999Result,
ClaimStatusEvent), ``remittance`` (Remittance, ClaimPayment, LinePayment, Adjustment,
ProviderAdjustment), ``ledger`` (Account, JournalEntry, JournalNote, Posting, PatientPayment, Refund),
``workqueue`` (WorkItem, WorkItemComment, Appeal, Note, ApprovalRequest, SavedFilter), ``statements`` (Statement,
StatementLine), ``eligibility`` (EligibilityCheck), ``security`` (User, UserSession,
ApiToken, AuditEvent, EncryptionKey, PatientAccessLink), ``idempotency`` (IdempotencyRecord).
"""

from __future__ import annotations

from claims_server.db import Base
from claims_server.models.claims import (
    Claim,
    ClaimDiagnosis,
    ClaimFrequency,
    ClaimKind,
    ClaimNote,
    ClaimNoteKind,
    ClaimState,
    ServiceLine,
    UnitBasis,
)
from claims_server.models.common import phi_columns, utcnow
from claims_server.models.edi_files import (
    Ack999Result,
    ClaimStatusEvent,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    FileDirection,
)
from claims_server.models.eligibility import EligibilityCheck, EligibilityStatus
from claims_server.models.idempotency import IdempotencyRecord
from claims_server.models.ledger import (
    RECEIVABLE_ACCOUNTS,
    STANDARD_CHART,
    Account,
    AccountCode,
    AccountType,
    JournalEntry,
    JournalEventType,
    JournalNote,
    PatientPayment,
    PaymentMethod,
    Posting,
    Refund,
    RefundKind,
    RefundMethod,
    RefundState,
    balance_select,
    ensure_standard_accounts,
)
from claims_server.models.operations import ChargeImport, FeeScheduleEntry, ScheduledJob
from claims_server.models.patients import (
    Coverage,
    CoverageOrder,
    Encounter,
    Patient,
    RelationshipToSubscriber,
    Sex,
)
from claims_server.models.payers import (
    ClaimFilingIndicator,
    ClearinghouseRoute,
    Payer,
    TransportKind,
    UsageIndicator,
)
from claims_server.models.practice import Practice, Provider, ProviderEntityType
from claims_server.models.remittance import (
    AdjudicationHold,
    AdjudicationKind,
    AdjudicationState,
    Adjustment,
    AdjustmentGroup,
    ClaimPayment,
    LinePayment,
    ProviderAdjustment,
    Remittance,
    RemittanceState,
)
from claims_server.models.security import (
    ApiToken,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    EncryptionKey,
    KeyPurpose,
    PatientAccessLink,
    Role,
    User,
    UserSession,
)
from claims_server.models.statements import DeliveryChannel, Statement, StatementLine, StatementState
from claims_server.models.submissions import (
    BatchClaim,
    BatchState,
    ControlNumberCounter,
    ControlNumberKind,
    Interchange,
    SubmissionBatch,
    TransactionKind,
)
from claims_server.models.workqueue import (
    Appeal,
    AppealLevel,
    AppealOutcome,
    AppealStatus,
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    Note,
    NoteKind,
    SavedFilter,
    WorkItem,
    WorkItemComment,
    WorkItemStatus,
    WorkQueue,
)

metadata = Base.metadata

__all__ = [
    "RECEIVABLE_ACCOUNTS",
    "STANDARD_CHART",
    "Account",
    "AccountCode",
    "AccountType",
    "Ack999Result",
    "AdjudicationHold",
    "AdjudicationKind",
    "AdjudicationState",
    "Adjustment",
    "AdjustmentGroup",
    "ApiToken",
    "Appeal",
    "AppealLevel",
    "AppealOutcome",
    "AppealStatus",
    "ApprovalKind",
    "ApprovalRequest",
    "ApprovalState",
    "AuditAction",
    "AuditEvent",
    "AuditOutcome",
    "Base",
    "BatchClaim",
    "BatchState",
    "ChargeImport",
    "Claim",
    "ClaimDiagnosis",
    "ClaimFilingIndicator",
    "ClaimFrequency",
    "ClaimKind",
    "ClaimNote",
    "ClaimNoteKind",
    "ClaimPayment",
    "ClaimState",
    "ClaimStatusEvent",
    "ClearinghouseRoute",
    "ControlNumberCounter",
    "ControlNumberKind",
    "Coverage",
    "CoverageOrder",
    "DeliveryChannel",
    "EdiFile",
    "EdiFileKind",
    "EdiFileStatus",
    "EligibilityCheck",
    "EligibilityStatus",
    "Encounter",
    "EncryptionKey",
    "FeeScheduleEntry",
    "FileDirection",
    "IdempotencyRecord",
    "Interchange",
    "JournalEntry",
    "JournalEventType",
    "JournalNote",
    "KeyPurpose",
    "LinePayment",
    "Note",
    "NoteKind",
    "Patient",
    "PatientAccessLink",
    "PatientPayment",
    "Payer",
    "PaymentMethod",
    "Posting",
    "Practice",
    "Provider",
    "ProviderAdjustment",
    "ProviderEntityType",
    "Refund",
    "RefundKind",
    "RefundMethod",
    "RefundState",
    "RelationshipToSubscriber",
    "Remittance",
    "RemittanceState",
    "Role",
    "SavedFilter",
    "ScheduledJob",
    "ServiceLine",
    "Sex",
    "Statement",
    "StatementLine",
    "StatementState",
    "SubmissionBatch",
    "TransactionKind",
    "TransportKind",
    "UnitBasis",
    "UsageIndicator",
    "User",
    "UserSession",
    "WorkItem",
    "WorkItemComment",
    "WorkItemStatus",
    "WorkQueue",
    "balance_select",
    "ensure_standard_accounts",
    "metadata",
    "phi_columns",
    "utcnow",
]

# --- statements-delivery: payment receipts and payment plans (claims_server.payments) ---
from claims_server.models.payments import (  # noqa: E402
    PaymentPlan,
    PaymentPlanItem,
    PaymentPlanState,
    PaymentReceipt,
    PaymentSource,
)

__all__ += ["PaymentPlan", "PaymentPlanItem", "PaymentPlanState", "PaymentReceipt", "PaymentSource"]
# --- end statements-delivery

# --- statements-core: statement runs (progress) and statement holds (claims_server.statements) ---
from claims_server.models.statements import (  # noqa: E402
    HoldReason,
    StatementHold,
    StatementPrintBatch,
    StatementRun,
    StatementRunState,
)

__all__ += ["HoldReason", "StatementHold", "StatementPrintBatch", "StatementRun", "StatementRunState"]
# --- end statements-core
