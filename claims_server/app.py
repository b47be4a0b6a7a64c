"""The application factory.

``create_app`` reads settings, connects to the database (failing fast with a one-line
error that names the setting), and registers the API blueprints, the problem+json error
handlers, request ids and JSON logging.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from claims_server import __version__
from claims_server.api_common.limits import init_app as init_input_limits
from claims_server.config import ConfigError, Settings, load_settings
from claims_server.db import make_engine, make_session_factory
from claims_server.errors import problem, register_error_handlers
from claims_server.logs import configure_logging

if TYPE_CHECKING:
    from claims_server.api_common.openapi import ClaimsApi

log = logging.getLogger("claims_server.request")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class AppState:
    """What the app holds beyond Flask's config: settings, engine, session factory."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def state(app: Flask | None = None) -> AppState:
    from flask import current_app

    return (app or current_app).extensions["claims_server"]


def db_session() -> Session:
    """The request's session, closed at teardown."""
    if "db_session" not in g:
        g.db_session = state().session_factory()
    return g.db_session


def check_database(engine: Engine) -> None:
    """Connect once so an unreachable or misspelled DATABASE_URL fails at start."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        safe_url = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("DATABASE_URL", f"cannot connect to {safe_url}: {reason}") from None


def _secret_key(settings: Settings) -> str:
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    path = Path(settings.INSTANCE_PATH) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides environment settings (tests use it)."""
    settings = load_settings(config)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    Path(settings.INSTANCE_PATH).mkdir(parents=True, exist_ok=True)

    app = Flask("claims_server", instance_path=settings.INSTANCE_PATH)
    if settings.TRUSTED_PROXY_COUNT:  # request.remote_addr = the client as the trusted proxies saw it
        n = settings.TRUSTED_PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        MAX_CONTENT_LENGTH=settings.MAX_UPLOAD_BYTES,
        JSON_SORT_KEYS=False,
        API_TITLE="claims-server",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Open-source US medical billing server: claims, X12 5010 EDI, "
                "remittances, work queues and patient statements.",
                "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            },
            "security": [{"bearer": []}, {"session_cookie": []}],
        },
    )
    for key, value in (config or {}).items():
        if key.isupper() and key not in Settings.__dataclass_fields__:
            app.config[key] = value

    engine = make_engine(settings.database_url)
    check_database(engine)
    app.extensions["claims_server"] = AppState(settings, engine, make_session_factory(engine))

    from claims_server.tasks.celery_app import configure_celery

    configure_celery(settings)

    # Errors are declared once, as problem+json (claims_server.api_common.openapi).
    from claims_server.api_common.openapi import ClaimsApi, ProblemResponsesPlugin, register_security_schemes

    api = ClaimsApi(app, spec_kwargs={"extra_plugins": [ProblemResponsesPlugin(app)]})
    register_security_schemes(api)
    register_error_handlers(app)
    _register_request_hooks(app)

    from claims_server.health import blp as health_blp

    api.register_blueprint(health_blp)
    _register_api_v1(api)
    app.extensions["claims_server_api"] = api

    # --- fhir: the FHIR R4 facade under /fhir/R4 (a plain blueprint, not in the OpenAPI document)
    from claims_server.fhir import register as register_fhir

    register_fhir(app)
    # --- end fhir

    from claims_server.security import init_app as init_security

    # Key ring, policy enforcement (deny by default), auth and patient-link blueprints.
    init_security(app)
    # --- ui: the staff workspace (server-rendered pages at /ui; / redirects there)
    from claims_server.ui import init_app as init_ui

    init_ui(app)
    # --- end ui
    # --- portal: the patient pages (server-rendered, /pay)
    from claims_server.portal import init_app as init_portal

    init_portal(app)
    # --- end portal
    # --- scheduler: every job has its row (and next run) from the start, so /healthz and the
    # Scheduler page show jobs overdue even when no runner ever ran them (docs/scheduler.md)
    from claims_server.scheduler.jobs import registry
    from claims_server.scheduler.runner import sync_jobs_at_start

    sync_jobs_at_start(state(app).session_factory, registry(settings))
    # --- end scheduler
    return app


def _register_api_v1(api: ClaimsApi) -> None:
    """The ``/api/v1`` resource blueprints (practice, payers, patients, claims)."""
    from claims_server.claims.views import blp as claims_blp
    from claims_server.patients.views import blp as patients_blp
    from claims_server.payers.views import blp as payers_blp
    from claims_server.practice.views import blp as practice_blp

    for blueprint in (practice_blp, payers_blp, patients_blp, claims_blp):
        api.register_blueprint(blueprint)

    from claims_server.edi_inbound.views import blp as edi_inbound_blp

    # submission-pipeline: X12 files posted by integrations, answered with our 999/TA1.
    api.register_blueprint(edi_inbound_blp)

    # sending claims: ready claims batched and uploaded, batches with their files.
    from claims_server.submission.views import blp as batches_blp

    api.register_blueprint(batches_blp)

    # remit-work: work queue, corrections/appeals/next-payer claims, reports.
    from claims_server.corrections.views import blp as corrections_blp
    from claims_server.reports.views import blp as reports_blp
    from claims_server.workqueue.views import blp as workqueue_blp

    for blueprint in (workqueue_blp, corrections_blp, reports_blp):
        api.register_blueprint(blueprint)
    # follow-up notes on claims, patients and work items; each user's follow-ups due
    from claims_server.workqueue.notes_views import blp as follow_up_notes_blp

    api.register_blueprint(follow_up_notes_blp)
    # each user's saved work-queue filters
    from claims_server.workqueue.saved_filters_views import blp as saved_filters_blp

    api.register_blueprint(saved_filters_blp)

    # remit-posting: 835 upload, posting and remittance reads.
    from claims_server.remittance.views import blp as remittances_blp

    api.register_blueprint(remittances_blp)
    # possible duplicates: held adjudications beside the current ones, a supervisor's decision.
    from claims_server.remittance.held_views import blp as held_blp

    api.register_blueprint(held_blp)
    # claim screen: one claim's remittance detail (per-line adjudications, history, related claims).
    from claims_server.remittance.claim_detail_views import blp as claim_remittances_blp

    api.register_blueprint(claim_remittances_blp)

    # eligibility: 270/271 checks, benefits summaries, patient estimates.
    from claims_server.eligibility.views import blp as eligibility_blp

    api.register_blueprint(eligibility_blp)
    # --- end eligibility

    # statements-delivery: patient payments and plans, statements (delivery), paying through the link.
    from claims_server.payments.views import blp as payments_blp
    from claims_server.payments.views import patient_pay_blp
    from claims_server.statements.views import blp as statements_blp
    from claims_server.statements.views import patient_statement_blp

    for blueprint in (payments_blp, patient_pay_blp, statements_blp, patient_statement_blp):
        api.register_blueprint(blueprint)
    # --- end statements-delivery
    # --- write-offs: a claim's open balance written off with a reason (claims_server.ledger.views)
    from claims_server.ledger.approval_views import blp as approvals_blp
    from claims_server.ledger.views import blp as write_offs_blp

    api.register_blueprint(write_offs_blp)
    api.register_blueprint(approvals_blp)  # over-limit write-offs and refunds, for a supervisor
    # --- end write-offs
    # --- scheduler: the periodic jobs, their last run and next run (claims_server.scheduler.views)
    from claims_server.scheduler.views import blp as scheduler_blp

    api.register_blueprint(scheduler_blp)
    # --- end scheduler
    # --- charge import: charge CSVs imported as claims (claims_server.claims.charge_import_views)
    from claims_server.claims.charge_import_views import blp as charge_imports_blp

    api.register_blueprint(charge_imports_blp)
    # --- end charge import
    # --- credits: unmatched payments applied or returned, credit balances, refunds
    # (claims_server.remittance.unmatched_views, claims_server.ledger.credit_views)
    from claims_server.ledger.credit_views import blp as credit_balances_blp
    from claims_server.remittance.unmatched_views import blp as unmatched_payments_blp

    api.register_blueprint(credit_balances_blp)
    api.register_blueprint(unmatched_payments_blp)
    # --- end credits


def assign_request_id() -> str:
    """The request's id: the caller's ``X-Request-ID`` when it is safe to log, else a new one.

    Idempotent within a request, so whichever hook runs first (policy enforcement does)
    fixes the id that the audit rows, the logs and the response header all carry.
    """
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    return g.request_id


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start() -> Response | None:
        assign_request_id()
        g.started = time.perf_counter()
        # API bodies are JSON unless a view says otherwise (X12 uploads set accepts).
        if request.method in JSON_BODY_METHODS and request.path.startswith("/api/"):
            view = app.view_functions.get(request.endpoint or "")
            accepted = getattr(view, "accepts", ("application/json",))
            has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
            if has_body and request.mimetype not in accepted:
                return problem(
                    415,
                    f"this endpoint accepts {', '.join(accepted)}, not {request.mimetype or 'no content type'}",
                )
        return None

    # Input limits (size per content type, JSON depth, text that cannot be stored), after the 415.
    init_input_limits(app)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            },
        )
        return response

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()
