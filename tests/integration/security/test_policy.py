"""The policy table covers every route; enforcement follows it per role; others' objects are 404."""

from __future__ import annotations

import re
from datetime import date

import pytest

from claims_server.models import Statement
from claims_server.security.policy import POLICY, Rule
from claims_server.security.principal import ALL_ROLES
from tests.integration.security import factories


def test_every_route_of_the_app_has_a_policy_entry(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = sorted(e for e in endpoints if e not in POLICY)
    assert missing == [], f"routes without a policy entry (add them to security/policy.py): {missing}"
    assert all(isinstance(r, Rule) for r in POLICY.values())


def test_an_endpoint_without_policy_is_refused_even_for_admins(app, api_client, monkeypatch):
    monkeypatch.delitem(POLICY, "auth.whoami")
    assert api_client("admin").get("/api/v1/auth/session").status_code == 403


def _call(client, rule, method: str):
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "0" * 32, rule.rule)
    return client.open(path, method=method, json={} if method in ("POST", "PUT", "PATCH") else None)


def test_route_by_role_matrix(app, api_client, session):
    patient = factories.patient(session, factories.practice(session).id)
    session.commit()
    clients = {
        role: api_client(role, patient_id=patient.id if role == "patient" else None) for role in ALL_ROLES
    }
    checked = 0
    for rule in app.url_map.iter_rules():
        policy = POLICY[rule.endpoint]
        if policy.public or rule.endpoint == "auth.logout":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            anonymous = _call(app.test_client(), rule, method)
            if rule.rule.startswith("/ui/"):
                # The staff workspace renders the same refusal as a redirect to its sign-in page.
                assert anonymous.status_code == 303, (rule.endpoint, method)
                assert "/ui/sign-in" in anonymous.headers["Location"], (rule.endpoint, method)
            else:
                assert anonymous.status_code == 401, (rule.endpoint, method)
            for role, client in clients.items():
                status = _call(client, rule, method).status_code
                if role in policy.roles:
                    assert status not in (401, 403), (rule.endpoint, method, role, status)
                else:
                    assert status == 403, (rule.endpoint, method, role, status)
                checked += 1
    assert checked > 100


def test_integration_token_needs_the_scope_of_the_rule(api_client):
    assert api_client("integration", scopes=["auth:read"]).get("/api/v1/auth/session").status_code == 200
    assert api_client("integration", scopes=["claims:write"]).get("/api/v1/auth/session").status_code == 403


def _statement(session, patient_id: int) -> Statement:
    row = Statement(
        patient_id=patient_id, statement_date=date(2026, 3, 1), due_date=date(2026, 3, 31), balance_cents=4250
    )
    session.add(row)
    session.flush()
    return row


def test_a_patient_gets_404_for_another_patients_statement(api_client, session):
    practice = factories.practice(session)
    mine = factories.patient(session, practice.id, 1)
    theirs = factories.patient(session, practice.id, 2)
    my_statement, their_statement = _statement(session, mine.id), _statement(session, theirs.id)
    session.commit()
    client = api_client("patient", patient_id=mine.id)
    assert client.get(f"/api/v1/patient-link/statements/{my_statement.public_id}").status_code == 200
    response = client.get(f"/api/v1/patient-link/statements/{their_statement.public_id}")
    assert response.status_code == 404
    listed = client.get("/api/v1/patient-link/statements").get_json()["items"]
    assert [s["id"] for s in listed] == [my_statement.public_id]


def test_an_integration_gets_404_for_another_integrations_token(api_client):
    first = api_client("integration", scopes=["auth:read"])
    second = api_client("integration", scopes=["auth:read"])
    own = first.principal_info["public_id"]
    other = second.principal_info["public_id"]
    assert first.get(f"/api/v1/auth/tokens/{own}").status_code == 200
    assert first.get(f"/api/v1/auth/tokens/{other}").status_code == 404
    assert [t["id"] for t in first.get("/api/v1/auth/tokens").get_json()["items"]] == [own]


@pytest.mark.parametrize("role", ["biller", "auditor"])
def test_permission_denials_are_audited(api_client, session, role):
    from claims_server.models import AuditEvent

    client = api_client(role)
    assert client.post("/api/v1/auth/tokens", json={"name": "x", "scopes": ["a"]}).status_code == 403
    denied = session.query(AuditEvent).filter_by(event_type="access.denied").one()
    assert denied.actor_user_id == client.principal_info["user_id"] and denied.outcome == 4


def test_patient_link_expires(api_client, session, frozen_clock):
    patient = factories.patient(session, factories.practice(session).id)
    session.commit()
    client = api_client("patient", patient_id=patient.id)
    assert client.get("/api/v1/patient-link/statements").status_code == 200
    frozen_clock.advance(minutes=16)
    assert client.get("/api/v1/patient-link/statements").status_code == 401
