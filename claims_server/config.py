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

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENVIRONMENTS = ("development", "production", "test")


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
    REDIS_URL: str = ""  # rate limits, lockout counters; empty: in-process memory
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "json"
    SECRET_KEY: str = ""  # empty: generated once and kept under INSTANCE_PATH
    MAX_UPLOAD_BYTES: int = 50 * 1024 * 1024
    BROKER_VISIBILITY_TIMEOUT: int = 3600
    EDI_OUTBOX: str = ""  # empty: INSTANCE_PATH/edi/outbox
    EDI_INBOX: str = ""  # empty: INSTANCE_PATH/edi/inbox

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite:///{Path(self.INSTANCE_PATH) / 'claims.sqlite3'}"

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


def _coerce(name: str, raw: Any, target: type | str) -> Any:
    if target in (int, "int"):
        if isinstance(raw, bool):
            raise ConfigError(name, f"expected a whole number, got {raw!r}")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
        if value <= 0:
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
