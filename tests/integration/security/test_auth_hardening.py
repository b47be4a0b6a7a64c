"""Issue 15, findings 6, 7, 8 and 13: atomic attempt counters, TOTP replay, token scopes, proxies.

The concurrency tests run each attempt in its own thread with its own database session
(its own connection), released together by a barrier: on PostgreSQL they really overlap,
on SQLite the write lock serialises them. Either way no more than the limit is checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from claims_server.app import state
from claims_server.models import ApiToken, AuditEvent, PatientAccessLink, Role, User
from claims_server.security.authn import AuthError, login, token_hash
from claims_server.security.patient_links import MAX_BIRTH_DATE_ATTEMPTS, verify_patient_link
from claims_server.security.policy import POLICY, TOKEN_SCOPES
from claims_server.security.principal import acting_as, system_principal
from tests.integration.security import factories

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _together(app, count: int, attempt: Callable[[Any], Any]) -> list[Any]:
    """Run ``attempt(session)`` in ``count`` threads at once, each with its own session."""
    factory = state(app).session_factory
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        with app.app_context(), factory() as session:
            barrier.wait()
            try:
                results[index] = attempt(session)
            except Exception as exc:
                session.rollback()
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _reasons(session, event_type: str) -> list[str]:
    session.expire_all()
    return [
        e.details.get("reason")
        for e in session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type))
        if e.outcome != 0
    ]


# -- finding 6: the birth-date check ------------------------------------------------------------


def test_concurrent_wrong_birth_dates_check_at_most_five(app, session, api_client):
    patient = factories.patient(session, factories.practice(session).id, birth_date=date(1961, 7, 4))
    session.commit()
    issued = api_client("biller").post("/api/v1/auth/patient-links", json={"patient_id": patient.public_id})
    digest = token_hash(issued.get_json()["token"])

    def wrong_date(s):
        return verify_patient_link(s, token_digest=digest, birth_date=date(1961, 7, 5), now=NOW)

    results = _together(app, 9, wrong_date)
    assert all(isinstance(r, AuthError) for r in results), results
    reasons = _reasons(session, "patient_link.verify")
    assert reasons.count("birth_date") == MAX_BIRTH_DATE_ATTEMPTS  # compared: exactly five
    assert len(reasons) == 9 and set(reasons) == {"birth_date", "attempts"}
    link = session.scalar(select(PatientAccessLink).where(PatientAccessLink.token_hash == digest))
    assert link.failed_attempts == MAX_BIRTH_DATE_ATTEMPTS and link.revoked_at is not None
    # Revoked: even the right date is no longer compared.
    with pytest.raises(AuthError):
        verify_patient_link(session, token_digest=digest, birth_date=date(1961, 7, 4), now=NOW)


def test_a_right_date_after_wrong_ones_opens_the_link_once(app, session, api_client):
    patient = factories.patient(session, factories.practice(session).id, birth_date=date(1961, 7, 4))
    session.commit()
    issued = api_client("biller").post("/api/v1/auth/patient-links", json={"patient_id": patient.public_id})
    digest = token_hash(issued.get_json()["token"])
    for _ in range(MAX_BIRTH_DATE_ATTEMPTS - 1):
        with pytest.raises(AuthError):
            verify_patient_link(session, token_digest=digest, birth_date=date(1961, 7, 5), now=NOW)
    _token, link = verify_patient_link(session, token_digest=digest, birth_date=date(1961, 7, 4), now=NOW)
    assert link.used_at is not None and link.failed_attempts == MAX_BIRTH_DATE_ATTEMPTS - 1


# -- finding 6, the same class: sign-in failures ---------------------------------------------------


@pytest.fixture
def staff(app, session):
    from claims_server.security.authn import create_user

    with acting_as(system_principal("test")):
        user = create_user(
            session, username="pat.biller", display_name="Pat", role=Role.BILLER, password=PASSWORD
        )
    session.commit()
    return user


def _login(session, app, password: str, code: str | None = None, now: datetime = NOW):
    return login(
        session,
        username="pat.biller",
        password=password,
        totp_code=code,
        settings=state(app).settings,
        now=now,
        source_address="192.0.2.1",
    )


def test_concurrent_wrong_passwords_check_at_most_the_limit(app, session, staff):
    limit = state(app).settings.LOGIN_MAX_FAILURES
    results = _together(app, limit + 4, lambda s: _login(s, app, "not the password at all"))
    assert all(isinstance(r, AuthError) for r in results), results
    reasons = _reasons(session, "login.failure")
    assert reasons.count("password") == limit and reasons.count("locked") == 4
    user = session.get(User, staff.id)
    assert user.failed_login_count == limit and user.locked_until is not None
    with pytest.raises(AuthError):  # locked: the right password is not even checked
        _login(session, app, PASSWORD)
    assert _login(session, app, PASSWORD, now=user.locked_until + timedelta(seconds=1)).user.id == staff.id


# -- finding 7: TOTP replay --------------------------------------------------------------------------


def _enrol(session, user_id: int) -> str:
    user = session.get(User, user_id)
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled = True
    session.commit()
    return user.totp_secret


def test_a_totp_code_signs_in_once_and_older_codes_never(app, session, staff):
    secret = _enrol(session, staff.id)
    code = pyotp.TOTP(secret).at(NOW)
    assert _login(session, app, PASSWORD, code).user.id == staff.id
    for _ in range(2):  # the attack signed in three times with one code
        with pytest.raises(AuthError):
            _login(session, app, PASSWORD, code, now=NOW + timedelta(seconds=20))
    previous = pyotp.TOTP(secret).at(NOW - timedelta(seconds=30))  # still inside the drift window
    with pytest.raises(AuthError):
        _login(session, app, PASSWORD, previous)
    later = NOW + timedelta(seconds=30)
    assert _login(session, app, PASSWORD, pyotp.TOTP(secret).at(later), now=later).user.id == staff.id
    assert _reasons(session, "login.failure") == ["totp", "totp", "totp"]


def test_two_concurrent_sign_ins_with_one_code_one_wins(app, session, staff):
    secret = _enrol(session, staff.id)
    code = pyotp.TOTP(secret).at(NOW)
    results = _together(app, 2, lambda s: _login(s, app, PASSWORD, code).user.id)
    assert sorted(type(r).__name__ for r in results) == ["AuthError", "int"], results


def test_enrolment_code_and_ui_sign_in_refuse_replay(app, client, session, staff, frozen_clock):
    from tests.integration.ui.support import csrf_token_of

    login_body = {"username": "pat.biller", "password": PASSWORD}
    token = client.post("/api/v1/auth/login", json=login_body).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    secret = client.post("/api/v1/auth/totp/setup", headers=auth).get_json()["secret"]
    code = pyotp.TOTP(secret).at(frozen_clock())
    assert client.post("/api/v1/auth/totp/confirm", headers=auth, json={"code": code}).status_code == 200
    # The code that confirmed enrolment is spent: neither the API nor the workspace accepts it.
    assert client.post("/api/v1/auth/login", json={**login_body, "totp_code": code}).status_code == 401
    ui = app.test_client()
    form = {**login_body, "totp_code": code, "csrf_token": csrf_token_of(ui, "/ui/sign-in")}
    assert ui.post("/ui/sign-in", data=form).status_code == 422
    frozen_clock.advance(seconds=30)
    fresh = pyotp.TOTP(secret).at(frozen_clock())
    assert ui.post("/ui/sign-in", data={**form, "totp_code": fresh}).status_code == 303
    assert client.post("/api/v1/auth/login", json={**login_body, "totp_code": fresh}).status_code == 401


# -- finding 8: token scopes and expiry ----------------------------------------------------------------


def test_token_scopes_are_the_policy_scopes():
    named = {rule.scope for rule in POLICY.values() if rule.scope}
    assert set(TOKEN_SCOPES) == named and "*" not in TOKEN_SCOPES


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["*"]}, "scopes"),
        ({"scopes": ["admin"]}, "scopes"),
        ({"scopes": ["claims:write", "claims:delete"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["claims:write"], "expires_at": "2026-03-02T08:59:59+00:00"}, "expires_at"),
        ({"scopes": ["claims:write"], "expires_at": "2026-03-02T09:00:00+00:00"}, "expires_at"),
    ],
)
def test_token_api_refuses_unknown_scopes_and_past_expiry(api_client, session, frozen_clock, body, field):
    admin = api_client("admin")
    before = session.query(ApiToken).count()
    answer = admin.post("/api/v1/auth/tokens", json={"name": "feed", **body})
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert [e["field"] for e in answer.get_json()["errors"]] == [field]
    assert session.query(ApiToken).count() == before
    ok = admin.post(
        "/api/v1/auth/tokens",
        json={"name": "feed", "scopes": list(TOKEN_SCOPES), "expires_at": "2026-03-02T09:00:01+00:00"},
    )
    assert ok.status_code == 201 and ok.get_json()["scopes"] == sorted(TOKEN_SCOPES)


def test_a_star_scope_grants_nothing(app, session, api_client):
    """Even a row holding "*" (written before this check) is no wildcard any more."""
    client = api_client("integration", scopes=["auth:read"])
    row = session.get(ApiToken, client.principal_info["token_id"])
    row.scopes = ["*"]
    session.commit()
    assert client.get("/api/v1/auth/session").status_code == 403


def test_cli_refuses_unknown_scopes_and_past_expiry(app, database_url, session, monkeypatch):
    from claims_server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", app.instance_path)
    runner = CliRunner()
    before = session.query(ApiToken).count()
    star = runner.invoke(main, ["tokens", "create", "feed", "--scope", "*"])
    assert star.exit_code == 2 and "--scope" in star.output and "unknown scope" in star.output
    past = runner.invoke(
        main, ["tokens", "create", "feed", "--scope", "claims:write", "--expires-at", "2020-01-01T00:00:00Z"]
    )
    assert past.exit_code == 2 and "--expires-at" in past.output and "future" in past.output
    assert session.query(ApiToken).count() == before
    ok = runner.invoke(main, ["tokens", "create", "feed", "--scope", "claims:write"])
    assert ok.exit_code == 0, ok.output
    session.expire_all()
    assert session.query(ApiToken).count() == before + 1


# -- finding 13: trusted proxies -----------------------------------------------------------------------


def _app_behind(database_url: str, tmp_path, proxies: int):
    from claims_server import create_app

    return create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(tmp_path / f"proxy{proxies}"),
            "TESTING": True,
            "RATE_LIMIT_LOGIN": "2 per minute",
            "TRUSTED_PROXY_COUNT": proxies,
        }
    )


def _statuses(client, forwarded_for: str, times: int = 3) -> list[int]:
    return [
        client.post(
            "/api/v1/auth/login",
            json={"username": "nobody", "password": "wrong"},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code
        for _ in range(times)
    ]


@pytest.mark.parametrize("proxies", [1, 0])
def test_rate_limits_and_audit_use_the_trusted_proxy_address(database_url, tmp_path, proxies):
    from tests.conftest import _empty_tables

    app = _app_behind(database_url, tmp_path, proxies)
    try:
        client = app.test_client()
        first = _statuses(client, "198.51.100.7")
        second = _statuses(client, "203.0.113.9")
        assert first == [401, 401, 429]
        # One proxy trusted: each client its own budget. None: the header is ignored, one budget.
        assert second == ([401, 401, 429] if proxies else [429, 429, 429])
        with state(app).session_factory() as s:
            sources = {e.source_address for e in s.scalars(select(AuditEvent))}
        expected = {"198.51.100.7", "203.0.113.9"} if proxies else {"127.0.0.1"}
        assert expected <= sources and (proxies == 0 or "127.0.0.1" not in sources)
    finally:
        _empty_tables(state(app).engine)
        state(app).engine.dispose()


def test_trusted_proxy_count_is_validated():
    from claims_server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        load_settings({"TRUSTED_PROXY_COUNT": -1}, environ={})


def test_revision_0008_writes_out_the_star_scope_of_existing_tokens(tmp_path):
    """A token created with ``*`` before the fixed scope list keeps what it could do, spelled out."""
    import json
    import os
    from contextlib import nullcontext

    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    from claims_server import migrate
    from claims_server.models import ApiToken
    from claims_server.security.policy import TOKEN_SCOPES
    from tests.services import fresh_postgres_database

    backend = os.environ.get("TEST_DATABASE", "sqlite")
    place = (
        fresh_postgres_database() if backend == "postgres" else nullcontext(f"sqlite:///{tmp_path}/t.sqlite3")
    )
    with place as url:
        migrate.upgrade(url, "0007_phi_at_rest")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    ApiToken.__table__.insert(),
                    [
                        {
                            "id": n,
                            "name": f"t{n}",
                            "token_hash": f"{n:064d}",
                            "token_prefix": "cst_x",
                            "scopes": scopes,
                            "role": "integration",
                            "public_id": f"{n:032d}",
                            "created_at": datetime(2026, 11, 1, tzinfo=UTC),
                        }
                        for n, scopes in ((1, ["*"]), (2, ["claims:write"]))
                    ],
                )
            migrate.upgrade(url, "0008_auth_hardening")
            with engine.connect() as conn:
                rows = dict(conn.execute(sql("SELECT id, scopes FROM api_tokens")).all())
        finally:
            engine.dispose()
    decoded = {k: v if isinstance(v, list) else json.loads(v) for k, v in rows.items()}
    assert decoded == {1: sorted(TOKEN_SCOPES), 2: ["claims:write"]}
