"""The initial migration builds exactly the models' schema, on SQLite and PostgreSQL, and undoes it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import claims_server.models as models
from claims_server import migrate
from claims_server.db import make_engine
from tests.services import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'claims.sqlite3'}"
    else:
        with fresh_postgres_database() as url:
            yield url


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, models.Base.metadata))
    finally:
        engine.dispose()


def _check_constraint_names(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {str(ck["name"]) for ck in inspector.get_check_constraints(table)}
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }
    finally:
        engine.dispose()


def _model_check_constraint_names() -> dict[str, set[str]]:
    """CHECK constraint names as the models themselves create them (naming convention applied)."""
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    inspector = inspect(engine)
    names = {
        t: {str(ck["name"]) for ck in inspector.get_check_constraints(t)} for t in inspector.get_table_names()
    }
    engine.dispose()
    return names


def test_upgrade_matches_models_then_downgrade_removes_everything(empty_database: str) -> None:
    url = empty_database
    assert migrate.current(url) is None

    migrate.upgrade(url, "head")
    assert migrate.current(url) == migrate.head() == "0013_follow_up"
    assert _schema_diff(url) == []
    # compare_metadata ignores CHECK constraints; they carry the enum and money rules.
    expected_checks = _model_check_constraint_names()
    assert _check_constraint_names(url) == expected_checks
    assert sum(len(v) for v in expected_checks.values()) > 40

    migrate.downgrade(url, "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    assert migrate.current(url) is None

    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert _schema_diff(url) == []


def test_every_model_table_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tables.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        created = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert created == set(models.Base.metadata.tables)
    assert {"claims", "service_lines", "postings", "journal_entries", "audit_events"} <= created


def test_migrations_do_not_depend_on_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = f"sqlite:///{tmp_path / 'cwd.sqlite3'}"
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert Path(migrate.alembic_config(url).get_main_option("script_location") or "").is_absolute()


def test_one_linear_history_with_a_single_head() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert scripts.get_heads() == ["0013_follow_up"]
    assert scripts.get_revision("0013_follow_up").down_revision == "0012_adjudication_history"
    assert scripts.get_revision("0010_statement_run_plan").down_revision == "0009_claim_notes"
    assert scripts.get_revision("0009_claim_notes").down_revision == "0008_auth_hardening"
    assert scripts.get_revision("0008_auth_hardening").down_revision == "0007_phi_at_rest"
    assert scripts.get_revision("0007_phi_at_rest").down_revision == "0006_journal_notes"
    assert scripts.get_revision("0006_journal_notes").down_revision == "0005_statements"
    assert scripts.get_revision("0005_statements").down_revision == "0004_payments"
    assert scripts.get_revision("0004_payments").down_revision == "0003_phi_gaps"
    assert scripts.get_revision("0003_phi_gaps").down_revision == "0002_security"
    assert scripts.get_revision("0002_security").down_revision == "0001_initial"
    assert scripts.get_revision("0001_initial").down_revision is None


def test_revisions_do_not_import_application_code() -> None:
    """A revision must keep working after the models change, so it may not import them."""
    versions = Path(migrate.script_location()) / "versions"
    revision_files = sorted(versions.glob("*.py"))
    assert revision_files
    for path in revision_files:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(name.startswith("claims_server") for name in imported), path.name


def test_url_with_percent_sign_survives_the_config() -> None:
    url = "postgresql+psycopg://billing:p%40ss@db.example.org/claims"
    assert migrate.alembic_config(url).get_main_option("sqlalchemy.url") == url
