"""Settings: read from environment variables, with safe embedded defaults.

Every setting has one name, used both as the environment variable (prefixed
``CLAIMS_`` where noted) and as the key of the ``config`` mapping passed to
``create_app``. A bad value fails fast with one line that names the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from claims_server.scheduler.jobs import check_timezone, parse_intervals, parse_time_of_day

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENVIRONMENTS = ("development", "production", "test")
PAYMENT_PROCESSORS = ("none", "simulated")
SCHEDULER_MODES = ("in-process", "beat", "off")


class ConfigError(Exception):
    """A setting is missing, malformed or points at something unreachable."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"configuration error: {setting}: {problem}")
        self.setting = setting
        self.problem = problem


def _default_instance_path() -> str:
    return str(Path.cwd() / "instance")


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Field names are the environment variable names."""

    CLAIMS_ENV: str = "development"
    INSTANCE_PATH: str = field(default_factory=_default_instance_path)
    DATABASE_URL: str = ""  # empty: a SQLite file under INSTANCE_PATH
    CELERY_BROKER_URL: str = ""  # empty: tasks run eagerly, in-process
    CELERY_RESULT_BACKEND: str = ""  # empty: the broker URL when it is Redis
    REDIS_URL: str = ""  # rate limits; empty: in-process memory
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "json"
    SECRET_KEY: str = ""  # empty: generated once and kept under INSTANCE_PATH
    MAX_UPLOAD_BYTES: int = 50 * 1024 * 1024
    # --- input limits (claims_server.api_common.limits; docs/security.md "Input limits")
    JSON_MAX_BYTES: int = 1024 * 1024  # a JSON body (API, FHIR); X12 files keep MAX_UPLOAD_BYTES
    JSON_MAX_DEPTH: int = 32  # nesting levels of a JSON body (a FHIR Bundle needs about 10)
    JSON_MAX_ITEMS: int = 10_000  # members of one JSON array or object (statement runs take 10,000 ids)
    FORM_MAX_BYTES: int = 1024 * 1024  # an HTML form (staff workspace, patient pages)
    CHARGE_IMPORT_MAX_BYTES: int = 50 * 1024 * 1024  # a charge CSV (docs/charge-import.md)
    # --- end input limits
    BROKER_VISIBILITY_TIMEOUT: int = 3600
    EDI_OUTBOX: str = ""  # empty: INSTANCE_PATH/edi/outbox
    EDI_INBOX: str = ""  # empty: INSTANCE_PATH/edi/inbox
    # --- security (claims_server.security; see docs/security.md) ---
    MASTER_KEY: str = ""  # base64 of 32 bytes; wraps the data keys. Required in production (or the file)
    MASTER_KEY_FILE: str = ""  # a file holding MASTER_KEY; empty + no MASTER_KEY: INSTANCE_PATH/master.key
    FIELD_ENCRYPTION: str = "on"  # "off" only for the canary test's control run; refused in production
    AUDIT_CHECKPOINT_DIR: str = ""  # empty: INSTANCE_PATH/audit-checkpoints (keep it off the DB host)
    AUDIT_CHECKPOINT_SECONDS: int = 60  # a signed checkpoint at least this often while events arrive
    AUDIT_CHECKPOINT_EVENTS: int = 1000  # ... or after this many events, whichever comes first
    # A second place for every checkpoint (docs/security.md): /abs/dir or file:///dir (another
    # mount), sftp://user@host[:port]/folder, syslog (local) or syslog://host[:port] (UDP). Empty: none.
    AUDIT_CHECKPOINT_MIRROR: str = ""
    AUDIT_CHECKPOINT_MIRROR_HOST_KEY: str = ""  # sftp: the server's key, "ssh-ed25519 AAAA..." (pinned)
    AUDIT_CHECKPOINT_MIRROR_KEY_FILE: str = ""  # sftp: a private key file ...
    AUDIT_CHECKPOINT_MIRROR_PASSWORD: str = ""  # ... or a password
    SESSION_IDLE_MINUTES: int = 15
    SESSION_ABSOLUTE_HOURS: int = 12
    LOGIN_MAX_FAILURES: int = 5  # consecutive failures before the account locks
    LOCKOUT_MINUTES: int = 15
    PATIENT_LINK_HOURS: int = 72  # how long a patient statement link stays valid
    PATIENT_SESSION_MINUTES: int = 15  # the patient's session after the birth-date check
    RATE_LIMIT_LOGIN: str = "10 per minute"
    RATE_LIMIT_PATIENT_LINK: str = "10 per minute"
    RATE_LIMIT_UPLOAD: str = "30 per minute"
    # Reverse proxies in front of the app that append X-Forwarded-For/-Proto (Werkzeug ProxyFix).
    # 0: the headers are ignored and the client is the TCP peer; behind nginx alone: 1. Rate
    # limits, lockouts and audit rows all use the address this yields (docs/security.md).
    TRUSTED_PROXY_COUNT: int = 0
    # --- statements-delivery: email, print batches, patient links (claims_server.statements.delivery)
    SMTP_HOST: str = ""  # empty: statement emails are written as .eml files to STATEMENT_OUTBOX/email
    SMTP_PORT: int = 25
    SMTP_SECURITY: str = "starttls"  # none, starttls or tls; production refuses none (PHI in the body)
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str = ""
    STATEMENT_EMAIL_FROM: str = "statements@localhost"
    PUBLIC_BASE_URL: str = (
        "http://127.0.0.1:8000"  # as `claims-server serve`; patient links, FHIR Location/links
    )
    STATEMENT_OUTBOX: str = ""  # empty: INSTANCE_PATH/statements (print batches, emails without SMTP)
    # --- end statements-delivery
    # --- PHI at rest: retention (claims_server.retention; `claims-server maintenance purge`, beat)
    IDEMPOTENCY_RETENTION_HOURS: int = 24  # an Idempotency-Key answer (encrypted) is replayed, then deleted
    PRINT_BATCH_RETENTION_DAYS: int = 30  # a print batch's PDF and manifest (encrypted), then cleared
    # Files holding PHI that the server wrote for someone to collect (270/837 in a folder route's
    # outbox, .eml without SMTP, CLI print-batch files in STATEMENT_OUTBOX): deleted after this.
    OUTBOUND_FILE_RETENTION_HOURS: int = 72
    # --- end PHI at rest
    # --- statements-core: cycle rules (statements.cycle.CycleRules; validated there)
    STATEMENT_MIN_DAYS_BETWEEN: int = 28  # at most one statement per patient per this many days
    STATEMENT_MIN_BALANCE_CENTS: int = 500  # no statement below this amount due
    STATEMENT_MAX_STATEMENTS: int = 4  # statements per dunning cycle before a collections hold
    STATEMENT_REMINDERS: int = 2  # reminders between the first statement and the final notice
    STATEMENT_DUE_DAYS: int = 21  # due date = statement date + this
    # Payer ids (837 NM109, comma separated) whose plans let the practice bill the patient the
    # charge above the allowed amount (PR-45, out of network). Empty: none; PR-45 is then kept
    # off statements and queued for a biller (docs/statements.md).
    STATEMENT_BALANCE_BILLING_PAYERS: str = ""
    # A run whose row has not moved for this long gets its unfinished chunks queued again
    # (a killed worker; beat checks every minute). Keep it above the longest chunk's duration.
    STATEMENT_CHUNK_LEASE_SECONDS: int = 300
    STATEMENT_RUN_CHUNK_SIZE: int = 250  # patients per chunk task; the same in every process
    # --- end statements-core
    # --- write-offs (claims_server.ledger.write_offs)
    # The most billers may write off on one claim, all their write-offs together (cents);
    # supervisors and admins have no limit (docs/write-offs.md).
    WRITE_OFF_BILLER_LIMIT_CENTS: int = 50_000
    # The largest refund (patient or payer credit) a biller issues without a supervisor's
    # approval (cents); above it the refund waits as an approval request (docs/credit-balances.md).
    REFUND_BILLER_LIMIT_CENTS: int = 10_000
    # --- end write-offs
    # --- patient payments (claims_server.payments.processors; see docs/payments-and-delivery.md)
    # none: no online payments (the patient pages say how to pay by mail or phone); simulated: a
    # test-mode processor that charges no card (refused in production). Empty: none in
    # production, simulated elsewhere.
    PAYMENT_PROCESSOR: str = ""
    # --- end patient payments
    # --- scheduler: the billing day's periodic jobs (claims_server.scheduler; docs/scheduler.md)
    # in-process: a thread in each `claims-server serve` worker runs the due jobs (a database lease
    # makes each run once); beat: `claims-server beat` beside the workers (needs CELERY_BROKER_URL);
    # off: nothing runs them (`claims-server scheduler tick` from cron). Empty: in-process without
    # a broker, beat with one.
    SCHEDULER: str = ""
    SCHEDULER_TIMEZONE: str = "UTC"  # the zone of the daily times (SEND_SCHEDULE, STATEMENT_CYCLE, ...)
    SEND_SCHEDULE: str = "off"  # "HH:MM": batch and send every ready claim once a day; off: by hand
    STATEMENT_CYCLE: str = "off"  # "HH:MM": a statement run every day (the cycle rules pick who); off
    # Seconds between runs, overriding the registry's schedule: "poll-clearinghouse-inboxes=60,...".
    SCHEDULER_INTERVALS: str = ""
    # --- end scheduler

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{Path(self.INSTANCE_PATH) / 'claims.sqlite3'}"

    @property
    def audit_checkpoint_dir(self) -> str:
        return self.AUDIT_CHECKPOINT_DIR or str(Path(self.INSTANCE_PATH) / "audit-checkpoints")

    @property
    def payment_processor(self) -> str:
        """``PAYMENT_PROCESSOR``, or its default for ``CLAIMS_ENV``."""
        if self.PAYMENT_PROCESSOR:
            return self.PAYMENT_PROCESSOR
        return "none" if self.CLAIMS_ENV == "production" else "simulated"

    @property
    def scheduler_mode(self) -> str:
        """``SCHEDULER``, or its default: in-process without a broker, beat with one."""
        if self.SCHEDULER:
            return self.SCHEDULER
        return "in-process" if self.tasks_eager else "beat"

    @property
    def tasks_eager(self) -> bool:
        return not self.CELERY_BROKER_URL

    @property
    def result_backend(self) -> str:
        if self.CELERY_RESULT_BACKEND:
            return self.CELERY_RESULT_BACKEND
        if self.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            return self.CELERY_BROKER_URL
        return ""


#: Whole-number settings for which 0 is meaningful (every other one must be positive).
_ZERO_ALLOWED = frozenset({"TRUSTED_PROXY_COUNT"})


def _coerce(name: str, raw: Any, target: type | str) -> Any:
    if target in (int, "int"):
        if isinstance(raw, bool):
            raise ConfigError(name, f"expected a whole number, got {raw!r}")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
        if value < 0 or (value == 0 and name not in _ZERO_ALLOWED):
            raise ConfigError(name, f"must be positive, got {value}")
        return value
    if not isinstance(raw, str):
        raise ConfigError(name, f"expected text, got {type(raw).__name__}")
    return raw.strip()


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from the environment, then ``overrides``; validate every value."""
    env = os.environ if environ is None else environ
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in env and env[name] != "":
            values[name] = _coerce(name, env[name], f.type)
    for name, raw in (overrides or {}).items():
        if name not in known:
            # Flask-level keys (TESTING, ...) pass through create_app untouched.
            continue
        values[name] = _coerce(name, raw, known[name].type)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.CLAIMS_ENV not in ENVIRONMENTS:
        raise ConfigError(
            "CLAIMS_ENV", f"unknown value {s.CLAIMS_ENV!r}; use one of {', '.join(ENVIRONMENTS)}"
        )
    if s.LOG_LEVEL.upper() not in LOG_LEVELS:
        raise ConfigError("LOG_LEVEL", f"unknown value {s.LOG_LEVEL!r}; use one of {', '.join(LOG_LEVELS)}")
    if s.LOG_FORMAT not in ("json", "text"):
        raise ConfigError("LOG_FORMAT", f"unknown value {s.LOG_FORMAT!r}; use json or text")
    if s.DATABASE_URL and not s.DATABASE_URL.startswith(("sqlite", "postgresql")):
        raise ConfigError("DATABASE_URL", "only sqlite:// and postgresql+psycopg:// URLs are supported")
    if s.CELERY_BROKER_URL and not s.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://")):
        raise ConfigError(
            "CELERY_BROKER_URL", "use a redis:// or amqp:// URL, or leave it empty for in-process tasks"
        )
    if s.REDIS_URL and not s.REDIS_URL.startswith(("redis://", "rediss://")):
        raise ConfigError("REDIS_URL", "use a redis:// URL, or leave it empty")
    if s.CLAIMS_ENV == "production" and not s.DATABASE_URL:
        raise ConfigError("DATABASE_URL", "must be set when CLAIMS_ENV=production")
    _validate_security(s)
    _validate_delivery(s)
    _validate_payments(s)
    _validate_scheduler(s)


def _validate_security(s: Settings) -> None:
    """Security settings: well-formed, and nothing weak when CLAIMS_ENV=production."""
    import base64
    import binascii

    from limits import parse_many

    if s.FIELD_ENCRYPTION not in ("on", "off"):
        raise ConfigError("FIELD_ENCRYPTION", f"unknown value {s.FIELD_ENCRYPTION!r}; use on or off")
    if s.MASTER_KEY:
        try:
            raw = base64.b64decode(s.MASTER_KEY, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("MASTER_KEY", "is not valid base64") from None
        if len(raw) != 32:
            raise ConfigError("MASTER_KEY", f"must decode to 32 bytes (AES-256), not {len(raw)}")
        if s.MASTER_KEY_FILE:
            raise ConfigError("MASTER_KEY_FILE", "set MASTER_KEY or MASTER_KEY_FILE, not both")
    if s.AUDIT_CHECKPOINT_MIRROR:
        from claims_server.security.checkpoints import parse_mirror

        try:
            kind, _ = parse_mirror(s.AUDIT_CHECKPOINT_MIRROR)
        except ValueError as exc:
            raise ConfigError("AUDIT_CHECKPOINT_MIRROR", str(exc)) from None
        if kind == "sftp" and not s.AUDIT_CHECKPOINT_MIRROR_HOST_KEY:
            raise ConfigError(
                "AUDIT_CHECKPOINT_MIRROR_HOST_KEY", "an sftp:// mirror needs the server's host key"
            )
        if kind == "sftp" and not (s.AUDIT_CHECKPOINT_MIRROR_KEY_FILE or s.AUDIT_CHECKPOINT_MIRROR_PASSWORD):
            raise ConfigError(
                "AUDIT_CHECKPOINT_MIRROR_KEY_FILE", "an sftp:// mirror needs a key file or a password"
            )
    if not 0 <= s.TRUSTED_PROXY_COUNT <= 10:
        raise ConfigError("TRUSTED_PROXY_COUNT", "must be the number of proxies in front of the app, 0 to 10")
    for name in ("RATE_LIMIT_LOGIN", "RATE_LIMIT_PATIENT_LINK", "RATE_LIMIT_UPLOAD"):
        try:
            parse_many(getattr(s, name))
        except ValueError:
            raise ConfigError(name, "use a rate like '10 per minute'") from None
    if s.CLAIMS_ENV == "production":
        if not (s.MASTER_KEY or s.MASTER_KEY_FILE):
            raise ConfigError(
                "MASTER_KEY", "MASTER_KEY or MASTER_KEY_FILE must be set when CLAIMS_ENV=production"
            )
        if s.FIELD_ENCRYPTION != "on":
            raise ConfigError("FIELD_ENCRYPTION", "must be on when CLAIMS_ENV=production")


def _validate_delivery(s: Settings) -> None:
    """Statement delivery settings (statements-delivery): email security and the patient link base."""
    if s.SMTP_SECURITY not in ("none", "starttls", "tls"):
        raise ConfigError("SMTP_SECURITY", f"unknown value {s.SMTP_SECURITY!r}; use none, starttls or tls")
    if s.SMTP_PORT > 65535:
        raise ConfigError("SMTP_PORT", f"must be a TCP port (1-65535), not {s.SMTP_PORT}")
    if "@" not in s.STATEMENT_EMAIL_FROM or any(c in s.STATEMENT_EMAIL_FROM for c in "\r\n<>"):
        raise ConfigError(
            "STATEMENT_EMAIL_FROM", "must be one plain email address such as billing@example.org"
        )
    if not s.PUBLIC_BASE_URL.startswith(("https://", "http://")):
        raise ConfigError("PUBLIC_BASE_URL", "must be an http:// or https:// URL")
    if s.CLAIMS_ENV == "production":
        if s.SMTP_HOST and s.SMTP_SECURITY == "none":
            raise ConfigError("SMTP_SECURITY", "must be starttls or tls when CLAIMS_ENV=production")
        if not s.PUBLIC_BASE_URL.startswith("https://"):
            raise ConfigError("PUBLIC_BASE_URL", "must be https:// when CLAIMS_ENV=production")


def _validate_payments(s: Settings) -> None:
    """The online payment processor: known, and never the simulated one in production."""
    if s.payment_processor not in PAYMENT_PROCESSORS:
        raise ConfigError(
            "PAYMENT_PROCESSOR",
            f"unknown value {s.PAYMENT_PROCESSOR!r}; use one of {', '.join(PAYMENT_PROCESSORS)}",
        )
    if s.CLAIMS_ENV == "production" and s.payment_processor == "simulated":
        raise ConfigError(
            "PAYMENT_PROCESSOR", "simulated charges no card and is refused when CLAIMS_ENV=production"
        )


def _validate_scheduler(s: Settings) -> None:
    """Scheduler settings (claims_server.scheduler): the mode, the time zone, times and intervals."""
    if s.scheduler_mode not in SCHEDULER_MODES:
        raise ConfigError(
            "SCHEDULER", f"unknown value {s.SCHEDULER!r}; use one of {', '.join(SCHEDULER_MODES)}"
        )
    if s.scheduler_mode == "beat" and s.tasks_eager:
        raise ConfigError("SCHEDULER", "beat needs CELERY_BROKER_URL (without a broker use in-process)")
    checks = (
        ("SCHEDULER_TIMEZONE", check_timezone),
        ("SEND_SCHEDULE", parse_time_of_day),
        ("STATEMENT_CYCLE", parse_time_of_day),
        ("SCHEDULER_INTERVALS", parse_intervals),
    )
    for name, check in checks:
        try:
            check(getattr(s, name))
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
