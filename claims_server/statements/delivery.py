"""Getting issued statements to patients: a print batch for a mail house, email, the patient link.

- Print batch: the PDFs of many statements merged into one file for a mail house, each
  statement starting on the front of a new sheet (a blank back page is added after a
  statement with an odd page count when printing duplex, so two patients' pages never
  share a sheet), with a manifest CSV saying which pages belong to which statement.
  Both hold PHI (names, addresses, account numbers): they are stored encrypted in
  ``statement_print_batches`` (AES-GCM under the data key) and leave the database only
  to the mail house (a business associate), through the download route or a file the
  operator names (``claims-server statements print-batch --out``, written 0600).
  ``claims-server maintenance purge`` clears them after ``PRINT_BATCH_RETENTION_DAYS``.
- Email: an HTML body (the statement as rendered for the browser) and a plain-text
  part, sent over SMTP (STARTTLS or TLS; production refuses plain SMTP). The subject
  names the practice only, never the patient or an amount. The body carries a
  one-time, expiring statement link (``security.patient_links``): the patient confirms
  their birth date and can read the statement and pay. Without ``SMTP_HOST`` the email
  is written as an ``.eml`` file (0600) to the outbox (the embedded default), removed
  by the purge after ``OUTBOUND_FILE_RETENTION_HOURS``.

Each statement delivered is audited (``statement.deliver`` with the channel) and moves
to ``delivered``. Rendering is not done here: callers pass the stored PDF and the HTML
(``claims_server.statements.services`` renders and stores them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.config import Settings
from claims_server.errors import ApiError, NotFound, Unprocessable
from claims_server.models import (
    AuditAction,
    AuditOutcome,
    DeliveryChannel,
    Patient,
    PatientAccessLink,
    Practice,
    Statement,
    StatementPrintBatch,
    StatementState,
)
from claims_server.models.common import new_public_id
from claims_server.portal.urls import pay_link_url
from claims_server.security.audit import audit_event
from claims_server.security.authn import token_hash
from claims_server.security.patient_links import create_patient_link
from claims_server.security.principal import current_principal

#: States from which a statement may be (re)delivered.
DELIVERABLE = (StatementState.ISSUED, StatementState.DELIVERED)


class DeliveryError(ApiError):
    """The mail server refused or could not be reached; nothing was marked delivered."""

    status, slug, title = 502, "delivery-failed", "Delivery failed"


def outbox_dir(settings: Settings) -> Path:
    """Where emails (without SMTP) and, by default, CLI print-batch files are written."""
    return Path(settings.STATEMENT_OUTBOX or Path(settings.INSTANCE_PATH) / "statements")


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only (the files hold PHI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _deliverable(statement: Statement) -> None:
    if statement.state not in DELIVERABLE:
        raise Unprocessable(
            f"statement {statement.public_id} is {statement.state.value}; only issued statements are delivered",
            errors=[{"field": "state", "rule": "issued", "message": "only issued statements are delivered"}],
        )


def _mark_delivered(
    session: Session,
    statement: Statement,
    channel: DeliveryChannel,
    now: datetime,
    details: dict[str, object],
) -> None:
    statement.delivery_channel = channel
    statement.delivered_at = now
    statement.state = StatementState.DELIVERED
    audit_event(
        session,
        action=AuditAction.EXECUTE,
        event_type="statement.deliver",
        entity_type="statement",
        entity_id=statement.public_id,
        patient_id=statement.patient_id,
        details={"channel": channel.value, **details},
    )


# -- print batch ---------------------------------------------------------------------------------

MANIFEST_FIELDS = (
    "sequence",
    "statement_id",
    "account_number",
    "dunning_stage",
    "first_page",
    "last_page",
    "pages",
    "sheets",
    "zip5",
)


@dataclass(frozen=True)
class PrintBatch:
    """One mail-house file set: the merged PDF, its manifest, and the counts a mail house checks."""

    batch_id: str
    pdf: bytes = field(repr=False)
    manifest: bytes = field(repr=False)  # CSV, UTF-8
    statements: int
    pages: int  # pages in the merged PDF, blank backs included
    sheets: int
    pdf_sha256: str
    statement_ids: tuple[str, ...]

    @property
    def pdf_name(self) -> str:
        return f"statements-{self.batch_id}.pdf"

    @property
    def manifest_name(self) -> str:
        return f"statements-{self.batch_id}.manifest.csv"

    def to_json_dict(self) -> dict[str, object]:
        return {
            "id": self.batch_id,
            "pdf": self.pdf_name,
            "manifest": self.manifest_name,
            "statements": self.statements,
            "pages": self.pages,
            "sheets": self.sheets,
            "pdf_sha256": self.pdf_sha256,
            "statement_ids": list(self.statement_ids),
        }


def write_print_batch(batch: PrintBatch, out_dir: Path) -> tuple[Path, Path]:
    """Write the batch's PDF and manifest (0600) into ``out_dir``, a place the operator chose."""
    pdf_path, manifest_path = out_dir / batch.pdf_name, out_dir / batch.manifest_name
    _write_private(pdf_path, batch.pdf)
    _write_private(manifest_path, batch.manifest)
    return pdf_path, manifest_path


class PrintBatchGone(ApiError):
    """The batch's files were cleared by the retention purge; its counts remain."""

    status, slug, title = 410, "print-batch-purged", "Print batch purged"


def print_batch_file(session: Session, batch_id: str, kind: str) -> tuple[bytes, str]:
    """A stored batch's ``pdf`` or ``manifest`` and its file name (404 unknown, 410 purged)."""
    row = session.scalar(select(StatementPrintBatch).where(StatementPrintBatch.public_id == batch_id))
    if row is None or kind not in ("pdf", "manifest"):
        raise NotFound("no print batch file with that name")
    content = row.pdf_content if kind == "pdf" else row.manifest_content
    if content is None:
        raise PrintBatchGone(
            f"print batch {batch_id} was cleared after its retention period (PRINT_BATCH_RETENTION_DAYS)"
        )
    suffix = ".pdf" if kind == "pdf" else ".manifest.csv"
    return bytes(content), f"statements-{batch_id}{suffix}"


def build_print_batch(
    session: Session,
    statements: Sequence[Statement],
    *,
    load_pdf: Callable[[Statement], bytes],
    now: datetime,
    duplex: bool = True,
) -> PrintBatch:
    """Merge the statements' PDFs into one file with a manifest; mark them delivered by mail.

    The PDF and manifest are stored encrypted (``StatementPrintBatch``) in the caller's
    transaction, so the batch and the statements' ``delivered`` state commit together;
    nothing is written to disk. Flushes; the caller commits. Refused (422) when
    ``statements`` is empty, holds a statement that is not issued, or a stored PDF
    cannot be read.
    """
    if not statements:
        raise Unprocessable(
            "no statements to print", errors=[{"field": "statements", "rule": "required", "message": "empty"}]
        )
    batch_id = f"{now:%Y%m%d}-{new_public_id()[:8]}"
    writer = PdfWriter()
    rows: list[dict[str, object]] = []
    page = 0
    sheets = 0
    for sequence, statement in enumerate(statements, start=1):
        _deliverable(statement)
        try:
            reader = PdfReader(io.BytesIO(load_pdf(statement)))
            count = len(reader.pages)
        except PdfReadError:
            raise Unprocessable(
                f"statement {statement.public_id}: the stored PDF cannot be read",
                errors=[{"field": "pdf", "rule": "readable_pdf", "message": "not a readable PDF"}],
            ) from None
        if count == 0:
            raise Unprocessable(
                f"statement {statement.public_id}: the stored PDF has no pages",
                errors=[{"field": "pdf", "rule": "pages", "message": "no pages"}],
            )
        writer.append(reader)
        first = page + 1
        page += count
        if duplex and count % 2:
            box = reader.pages[-1].mediabox
            writer.add_blank_page(width=float(box.width), height=float(box.height))
            page += 1
        statement_sheets = -(-count // 2) if duplex else count
        sheets += statement_sheets
        patient = statement.patient
        rows.append(
            {
                "sequence": sequence,
                "statement_id": statement.public_id,
                "account_number": patient.account_number,
                "dunning_stage": statement.dunning_stage,
                "first_page": first,
                "last_page": first + count - 1,
                "pages": count,
                "sheets": statement_sheets,
                "zip5": (patient.zip_code or "")[:5],
            }
        )
    buffer = io.BytesIO()
    writer.write(buffer)
    pdf = buffer.getvalue()
    digest = hashlib.sha256(pdf).hexdigest()
    text = io.StringIO(newline="")
    table = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\r\n")
    table.writeheader()
    table.writerows(rows)
    manifest = text.getvalue().encode("utf-8")
    session.add(
        StatementPrintBatch(
            public_id=batch_id,
            statements=len(rows),
            pages=page,
            sheets=sheets,
            pdf_sha256=digest,
            pdf_content=pdf,
            manifest_content=manifest,
            created_by_user_id=current_principal().user_id,
        )
    )
    for statement in statements:
        _mark_delivered(session, statement, DeliveryChannel.MAIL, now, {"batch": batch_id})
    audit_event(
        session,
        action=AuditAction.EXECUTE,
        event_type="statement.print_batch",
        entity_type="statement_print_batch",
        entity_id=batch_id,
        details={"statements": len(rows), "pages": page, "sheets": sheets, "pdf_sha256": digest},
    )
    session.flush()
    return PrintBatch(
        batch_id=batch_id,
        pdf=pdf,
        manifest=manifest,
        statements=len(rows),
        pages=page,
        sheets=sheets,
        pdf_sha256=digest,
        statement_ids=tuple(statement.public_id for statement in statements),
    )


def statements_to_print(session: Session, statement_ids: Sequence[str] | None = None) -> list[Statement]:
    """Issued statements for the mail (all of them, or those named), in patient-account order.

    Account order keeps a mail house's output easy to spot-check against the manifest.
    """
    stmt = select(Statement).where(Statement.state == StatementState.ISSUED)
    if statement_ids is not None:
        stmt = select(Statement).where(Statement.public_id.in_(list(statement_ids)))
    else:
        stmt = stmt.where(Statement.delivery_channel == DeliveryChannel.MAIL)
    rows = list(session.scalars(stmt.order_by(Statement.id)))
    if statement_ids is not None and len(rows) != len(set(statement_ids)):
        raise Unprocessable(
            "statement_ids: some ids name no statement",
            errors=[{"field": "statement_ids", "rule": "exists", "message": "unknown statement id"}],
        )
    return sorted(rows, key=lambda row: (row.patient.account_number, row.id))


def print_statements(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    statement_ids: Sequence[str] | None = None,
    duplex: bool = True,
) -> PrintBatch | None:
    """A print batch (stored encrypted) of the issued statements, or those named; None when there are none."""
    from claims_server.statements.services import statement_pdf

    statements = statements_to_print(session, statement_ids)
    if not statements:
        return None
    return build_print_batch(session, statements, load_pdf=statement_pdf, now=now, duplex=duplex)


# -- email ---------------------------------------------------------------------------------------


class Mailer(Protocol):
    """Sends one message; returns where it went (SMTP: the Message-ID, folder: the file)."""

    def send(self, message: EmailMessage) -> str: ...


@dataclass(frozen=True)
class SmtpMailer:
    """SMTP with STARTTLS, implicit TLS, or (tests, a local relay) none."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    def send(self, message: EmailMessage) -> str:
        context = ssl.create_default_context()
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password)
                refused = client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                "the mail server refused the statement email", smtp_code=exc.smtp_code
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"the mail server could not be reached or refused the message ({type(exc).__name__})"
            ) from None
        if refused:
            raise DeliveryError("the mail server refused the recipient")
        return str(message["Message-ID"])


@dataclass(frozen=True)
class FolderMailer:
    """Writes each message as an ``.eml`` file (0600): the embedded default and the demo."""

    directory: Path

    def send(self, message: EmailMessage) -> str:
        name = str(message["Message-ID"]).strip("<>").replace("@", "_at_").replace("/", "_") + ".eml"
        path = self.directory / name
        _write_private(path, message.as_bytes())
        return str(path)


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when ``SMTP_HOST`` is set, else the outbox folder."""
    if settings.SMTP_HOST:
        return SmtpMailer(
            settings.SMTP_HOST,
            settings.SMTP_PORT,
            settings.SMTP_SECURITY,
            settings.SMTP_USERNAME,
            settings.SMTP_PASSWORD,
        )
    return FolderMailer(outbox_dir(settings) / "email")


@dataclass(frozen=True)
class EmailContent:
    """What the email says beyond the HTML statement (for the plain-text part)."""

    practice_name: str
    practice_phone: str | None
    statement_date: date
    due_date: date
    amount_due: str  # already formatted, e.g. "$125.00"
    link_expires_on: date | None = None  # filled in when the link is issued


def statement_email(
    *, content: EmailContent, html: str, link_url: str, to_address: str, from_address: str
) -> EmailMessage:
    """The statement email: a subject without PHI, a plain-text part and the HTML statement."""
    message = EmailMessage()
    message["Subject"] = f"Your statement from {content.practice_name} is ready"
    message["From"] = f"{content.practice_name} <{from_address}>"
    message["To"] = to_address
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(idstring="statement", domain=from_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    phone = f"call {content.practice_phone}" if content.practice_phone else "contact our billing office"
    expires = f" on {content.link_expires_on.isoformat()}" if content.link_expires_on else ""
    message.set_content(
        "\n".join(
            [
                f"Your statement from {content.practice_name} dated {content.statement_date.isoformat()} is ready.",
                f"Amount due: {content.amount_due}, due by {content.due_date.isoformat()}.",
                "",
                "View it and pay securely (you will be asked for the patient's date of birth):",
                link_url,
                "",
                f"The link works once and expires{expires}; for a new one, {phone}.",
            ]
        )
        + "\n"
    )
    message.add_alternative(html, subtype="html")
    return message


def _valid_address(address: str | None) -> bool:
    if not address:
        return False
    local, at, domain = address.strip().rpartition("@")
    return bool(at and local and "." in domain and not any(c in address for c in "\r\n<>,; "))


@dataclass(frozen=True)
class EmailDelivery:
    statement_id: str
    sent_to: str  # Message-ID (SMTP) or the .eml path (folder): never the address
    link_expires_at: datetime


def email_statement(
    session: Session,
    statement: Statement,
    *,
    settings: Settings,
    mailer: Mailer,
    render_html: Callable[[Statement, str], str],
    content: EmailContent,
    now: datetime,
) -> EmailDelivery:
    """Email one issued statement with a fresh one-time link; mark it delivered.

    ``render_html(statement, link_url)`` is the statement as HTML with its pay link.
    Refused (422) without a usable email address on file (the message names the field,
    not the value). The link is committed *before* the message is sent: issuing it
    appends to the audit chain, whose lock lasts until the transaction ends, and no
    write anywhere may wait on a mail server. When the send fails the link is revoked
    (committed) and :class:`DeliveryError` (502) is raised; nothing is marked delivered.
    On success the statement is marked delivered (flushed; the caller commits).
    """
    _deliverable(statement)
    patient = session.get(Patient, statement.patient_id)
    assert patient is not None
    if not _valid_address(patient.email):
        raise Unprocessable(
            "the patient has no usable email address on file",
            errors=[
                {"field": "email", "rule": "email_address", "message": "missing or not an email address"}
            ],
        )
    issued = create_patient_link(
        session, patient, created_by_user_id=current_principal().user_id, settings=settings, now=now
    )
    link_url = pay_link_url(settings, issued.token)
    expires_at = issued.link.expires_at
    message = statement_email(
        content=replace(content, link_expires_on=expires_at.date()),
        html=render_html(statement, link_url),
        link_url=link_url,
        to_address=str(patient.email).strip(),
        from_address=settings.STATEMENT_EMAIL_FROM,
    )
    link_id, link_public_id = issued.link.id, issued.link.public_id
    session.commit()
    try:
        sent_to = mailer.send(message)
    except DeliveryError:
        link = session.get(PatientAccessLink, link_id)
        assert link is not None
        link.revoked_at = now
        audit_event(
            session,
            action=AuditAction.UPDATE,
            event_type="patient_link.revoke",
            entity_type="patient_access_link",
            entity_id=link_public_id,
            patient_id=statement.patient_id,
            outcome=AuditOutcome.MINOR_FAILURE,
            details={"reason": "statement_email_failed", "statement": statement.public_id},
        )
        session.commit()
        raise
    statement.pay_link_token_hash = token_hash(issued.token)
    statement.pay_link_expires_at = expires_at
    _mark_delivered(session, statement, DeliveryChannel.EMAIL, now, {"link": link_public_id})
    session.flush()
    return EmailDelivery(statement.public_id, sent_to, expires_at)


def email_content(session: Session, statement: Statement) -> EmailContent:
    """The practice's name and phone and the statement's dates and amount due, for the text part."""
    from claims_server.api_common.fields import cents_to_money

    patient = session.get(Patient, statement.patient_id)
    assert patient is not None
    practice = session.get(Practice, patient.practice_id)
    assert practice is not None
    phone = practice.phone
    return EmailContent(
        practice_name=practice.name,
        practice_phone=f"({phone[:3]}) {phone[3:6]}-{phone[6:]}" if phone and len(phone) == 10 else phone,
        statement_date=statement.statement_date,
        due_date=statement.due_date,
        amount_due="$" + cents_to_money(statement.balance_cents),
    )


def email_issued_statement(
    session: Session, statement: Statement, *, settings: Settings, now: datetime, mailer: Mailer | None = None
) -> EmailDelivery:
    """Email a stored statement (its HTML with a fresh link) through ``mailer`` or the configured one."""
    from claims_server.statements.services import statement_html

    return email_statement(
        session,
        statement,
        settings=settings,
        mailer=mailer or mailer_from_settings(settings),
        render_html=statement_html,
        content=email_content(session, statement),
        now=now,
    )
