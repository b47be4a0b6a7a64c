"""Schemathesis against the live server's own ``/openapi.json`` (issue 15, finding 12).

The server runs as in production (``claims-server serve``: gunicorn, one worker) on a
database holding the demo practice after its billing day (claims in every state,
remittances, work items, statements), so ids in paths and bodies can hit real rows:
each ``*_id`` path parameter and the references in request bodies draw, half of the
time, from the ids of that kind found in the database.

Callers: an admin session (TOTP confirmed) for the staff routes, a patient-link session
for ``/api/v1/patient-link/*``, and throwaway admin sessions for the operations that end
the caller's own sessions (sign-out, password change) so the run does not lock itself out.

The run is bounded and reproducible: a fixed seed, deterministic generation, a fixed
number of examples per operation, no shrinking. Every operation must answer with no
server error, a status the document declares, the declared content type and a body that
matches the declared schema (``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``,
``response_headers_conformance``); and every request the document calls invalid must be
refused with a 4xx (``negative_data_rejection``). Schema-valid requests refused by a
business rule the document cannot state (an unknown id, a cross-field rule, a TOTP code)
are expected, so ``positive_data_acceptance`` is not among the checks.

Two schemathesis workers against two gunicorn workers: the inputs of each operation are
the same on every run (deterministic generation), only the order operations run in varies.

``FUZZ_MAX_EXAMPLES`` (environment) changes the examples per operation for a longer
local run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import start_server
from tests.services import fresh_postgres_database

#: Examples per operation and phase (CI: bounded; a few minutes on 2 cores).
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
SEED = 15
#: gunicorn workers serving the run (a 2-core CI runner).
WORKERS = 2
#: schemathesis workers: one. Its workers are threads, and Hypothesis describes filter lambdas
#: with ``ast.parse``, which CPython 3.11 does not make thread-safe ("SystemError: AST
#: constructor recursion depth mismatch" ended a 2-worker run in its coverage phase).
ST_WORKERS = 1
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    # A request the document calls invalid (wrong type, missing required field or body, value
    # out of bounds, unknown property) must be refused with a 4xx.
    "negative_data_rejection",
)
#: Path parameter -> model whose public ids it takes (half of the generated values).
ID_PARAMETERS = {
    "practice_id": "Practice",
    "provider_id": "Provider",
    "route_id": "ClearinghouseRoute",
    "payer_id": "Payer",
    "patient_id": "Patient",
    "coverage_id": "Coverage",
    "claim_id": "Claim",
    "item_id": "WorkItem",
    "appeal_id": "Appeal",
    "remittance_id": "Remittance",
    "check_id": "EligibilityCheck",
    "payment_id": "PatientPayment",
    "plan_id": "PaymentPlan",
    "statement_id": "Statement",
    "batch_id": "StatementPrintBatch",
    "run_id": "StatementRun",
    "hold_id": "StatementHold",
    "write_off_id": "JournalEntry",
    "token_id": "ApiToken",
}
#: Request-body references (``body.<name>``) -> the path parameter whose ids they take.
BODY_REFERENCES = {
    "patient": "patient_id",
    "coverage": "coverage_id",
    "payer": "payer_id",
    "practice": "practice_id",
    "patient_id": "patient_id",
    "statement_id": "statement_id",
}
PATIENT_LINK_PREFIX = "/api/v1/patient-link/"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Operations that end the caller's sessions: each gets an admin session of its own.
SELF_ENDING = ("/api/v1/auth/logout", "/api/v1/auth/password", "/api/v1/auth/totp/setup")


@dataclass
class FuzzTarget:
    base_url: str
    admin_token: str
    patient_token: str
    throwaway_tokens: dict[str, str]
    ids: dict[str, list[str]]


def seed_principals(database_url: str) -> tuple[str, str, dict[str, str]]:
    """An admin with a confirmed TOTP factor, a patient-link session for a demo patient, and
    one throwaway admin per self-ending operation; returns their bearer tokens."""
    import pyotp
    from sqlalchemy import select

    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.models import PatientAccessLink, Role, Statement
    from claims_server.security.authn import PATIENT_PREFIX, create_user, new_token, open_session, token_hash
    from claims_server.security.clock import now
    from claims_server.security.principal import acting_as, system_principal

    settings = load_settings({"DATABASE_URL": database_url})
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        with acting_as(system_principal("test:openapi-fuzz")), unit_of_work(factory) as session:
            current = now()

            def admin(name: str) -> str:
                user = create_user(
                    session,
                    username=f"fuzz-{name}-{uuid.uuid4().hex[:6]}",
                    display_name=f"Fuzz {name}",
                    role=Role.ADMIN,
                    password=None,
                )
                user.totp_secret, user.totp_enabled = pyotp.random_base32(), True
                session.flush()
                return open_session(session, user, settings, current)

            admin_token = admin("admin")
            throwaway = {path: admin(path.rsplit("/", 1)[-1]) for path in SELF_ENDING}
            # The patient of the newest statement, so the patient routes have rows to show.
            statement = session.scalars(select(Statement).order_by(Statement.id.desc())).first()
            assert statement is not None, "the demo billing day made no statement"
            patient_token = new_token(PATIENT_PREFIX)
            session.add(
                PatientAccessLink(
                    patient_id=statement.patient_id,
                    token_hash=token_hash(new_token("csl_")),
                    expires_at=current + timedelta(hours=settings.PATIENT_LINK_HOURS),
                    used_at=current,
                    failed_attempts=0,
                    session_token_hash=token_hash(patient_token),
                    session_expires_at=current + timedelta(hours=4),
                    session_last_seen_at=current,
                    created_at=current,
                )
            )
    finally:
        engine.dispose()
    return admin_token, patient_token, throwaway


def collect_ids(database_url: str) -> dict[str, list[str]]:
    """The public ids of every kind a path parameter names (at most 20 of each)."""
    from sqlalchemy import select

    import claims_server.models as models
    from claims_server.db import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            ids = {}
            for parameter, model_name in ID_PARAMETERS.items():
                model = getattr(models, model_name)
                ids[parameter] = list(session.scalars(select(model.public_id).order_by(model.id).limit(20)))
            return ids
    finally:
        engine.dispose()


@contextmanager
def _database(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE", "sqlite") == "postgres":
        with fresh_postgres_database(prefix="claims_fuzz") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'claims.sqlite3'}"


@contextmanager
def fuzz_target(tmp_path: Path) -> Iterator[FuzzTarget]:
    """The demo practice after its billing day, served by ``claims-server serve``."""
    from claims_server.demo import run_demo

    with _database(tmp_path) as url:
        demo_dir = tmp_path / "demo"
        demo_dir.mkdir()
        run_demo(url, demo_dir, today=date.today())
        admin_token, patient_token, throwaway = seed_principals(url)
        ids = collect_ids(url)
        limits = {name: "100000 per minute" for name in ("RATE_LIMIT_LOGIN", "RATE_LIMIT_PATIENT_LINK")}
        limits["RATE_LIMIT_UPLOAD"] = "100000 per minute"
        instance = tmp_path / "instance"
        with start_server(url, instance, workers=WORKERS, **limits) as base:
            yield FuzzTarget(base, admin_token, patient_token, throwaway, ids)


def schemathesis_config(target: FuzzTarget, max_examples: int = MAX_EXAMPLES) -> dict[str, Any]:
    """The run's configuration (``schemathesis.toml`` as a dict)."""
    dictionaries = {name: {"values": values} for name, values in target.ids.items() if values}
    parameters: dict[str, Any] = {}
    for name in dictionaries:
        parameters[f"path.{name}"] = {"dictionary": name, "probability": 0.5}
    for field, source in BODY_REFERENCES.items():
        if source in dictionaries:
            parameters[f"body.{field}"] = {"dictionary": source, "probability": 0.5}
    operations: list[dict[str, Any]] = [
        {
            "include-path-regex": f"^{PATIENT_LINK_PREFIX}",
            "headers": {"Authorization": f"Bearer {target.patient_token}"},
        },
    ]
    operations += [
        {"include-path": path, "headers": {"Authorization": f"Bearer {token}"}}
        for path, token in target.throwaway_tokens.items()
    ]
    return {
        "seed": SEED,
        "base-url": target.base_url,
        "headers": {"Authorization": f"Bearer {target.admin_token}"},
        "request-timeout": 60,
        "color": False,
        "cache": {"enabled": False},
        "dictionaries": dictionaries,
        "parameters": parameters,
        "generation": {
            "max-examples": max_examples,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            # Credentials come from the headers above, not from generated security parameters.
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "operations": operations,
        "hooks": "tests.e2e.openapi_fuzz_hooks",
    }


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and arrays are valid TOML values


def write_config(config: dict[str, Any], path: Path) -> Path:
    """``config`` as TOML (tables, arrays of tables and inline tables for the rest)."""
    lines: list[str] = []
    for key, value in config.items():
        if not isinstance(value, dict | list) or (isinstance(value, list) and not value):
            lines.append(f"{key} = {_toml(value)}")
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            for sub, item in value.items():
                lines.append(f"{_toml(sub)} = {_inline(item)}")
    for item in config.get("operations", []):
        lines.append("\n[[operations]]")
        for sub, val in item.items():
            lines.append(f"{_toml(sub)} = {_inline(val)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _toml(value)


def run_schemathesis(target: FuzzTarget, workdir: Path, max_examples: int = MAX_EXAMPLES) -> tuple[int, str]:
    """Run ``st run`` on the live document; the exit code and the CLI's report."""
    config = write_config(schemathesis_config(target, max_examples), workdir / "schemathesis.toml")
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    result = subprocess.run(
        [
            st,
            "--config-file",
            str(config),
            "run",
            target.base_url + "/openapi.json",
            "--workers",
            str(ST_WORKERS),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO_ROOT)},
    )
    return result.returncode, result.stdout + result.stderr


# Runs in the PostgreSQL pass only (a few minutes): deselected, not skipped, in the SQLite
# pass by tests/conftest.py; FUZZ_ON_SQLITE=1 runs it there too.
@pytest.mark.postgres
@pytest.mark.postgres_pass
@pytest.mark.slow
def test_the_live_openapi_document_holds_under_schemathesis(tmp_path: Path) -> None:
    with fuzz_target(tmp_path) as target:
        code, report = run_schemathesis(target, tmp_path)
    print(report[-6000:])
    # The failures come first in the message (the warnings after them can be long).
    start = report.find("FAILURES")
    assert code == 0, (report[start : start + 12000] if start >= 0 else "") + report[-8000:]


def test_what_gunicorn_refuses_itself_is_problem_json_too(running_server: str) -> None:
    """A request line over gunicorn's limit never reaches the app; the answer is still
    problem+json (claims_server.gunicorn_conf), and it does not echo the query string."""
    import urllib.error
    import urllib.request

    secret = "canary" * 10
    url = f"{running_server}/api/v1/practices?cursor={secret}&pad={'x' * 9000}"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    assert caught.value.code == 414
    assert caught.value.headers["Content-Type"] == "application/problem+json"
    body = caught.value.read().decode()
    assert json.loads(body)["status"] == 414
    assert secret not in body
