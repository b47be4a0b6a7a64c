"""The real server over HTTP, and for the staff workspace a real browser.

- ``start_server(database_url, instance_path)``: a ``claims-server serve`` subprocess on a
  free port of 127.0.0.1 (gunicorn, one worker), stopped on exit.
- ``ui_server`` (session): its own database with the demo practice after the demo's whole
  billing day run through the real pipeline (837s out, 999/277CA/835 back, postings, work
  items, statements), staff users with a known password and TOTP secret, and the server.
- ``browser`` (session): Debian's chromium driven by Playwright (Playwright's own browser
  download cannot be fetched here); ``ui_page(role)`` a fresh, signed-in page (the sign-in
  is done once per role through the real form, then its cookies are reused).
- Screenshots go to ``$UI_SCREENSHOT_DIR`` or ``<pytest tmp>/ui-screenshots``; the folder is
  printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.services import fresh_postgres_database, running_process, unavailable

CHROMIUM = os.environ.get("UI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Synthetic credentials of the workspace's test users (test-only values).
UI_PASSWORD = "synthetic-ui-password-1"
UI_ROLES = ("biller", "billing_supervisor", "auditor")
#: Where this run's screenshots went (printed at the end of the run).
_SCREENSHOT_DIRS: list[Path] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def start_server(
    database_url: str, instance_path: Path, *, workers: int = 1, **settings: str
) -> Iterator[str]:
    """``claims-server serve`` on 127.0.0.1 with ``workers`` gunicorn workers (extra settings as
    environment); yields the base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance_path),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    env.pop("CELERY_BROKER_URL", None)
    # The server's output goes to a file, never a pipe nobody reads while it runs: a pipe fills
    # (64 KB of warnings over a session) and the server then blocks on its next log line.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "claims_server", "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5).close()
            except OSError:  # refused, reset or timed out while gunicorn boots
                return False
            return True

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        with running_process(proc, healthy, name="the server", output=output):
            yield base


@pytest.fixture
def running_server(database_url: str, tmp_path) -> Iterator[str]:
    with start_server(database_url, tmp_path) as base:
        yield base


# -- the staff workspace -----------------------------------------------------------------------


@dataclass
class StaffUser:
    role: str
    username: str
    totp_secret: str | None
    password: str = UI_PASSWORD
    last_step: int = -1  # the time step of the last code handed out

    def code(self) -> str:
        """The authenticator's current code. A code signs in once (the server keeps the last
        time step used), so like a person this waits for the app's next code if this one was
        handed out already (at most 30 s)."""
        import time
        from datetime import UTC, datetime

        import pyotp

        assert self.totp_secret, f"{self.username} has no second factor"
        totp = pyotp.TOTP(self.totp_secret)
        while totp.timecode(datetime.now(UTC)) <= self.last_step:
            time.sleep(0.5)
        now = datetime.now(UTC)
        self.last_step = totp.timecode(now)
        return totp.at(now)


@dataclass
class UiServer:
    """The running server, its database URL and the staff users to sign in as."""

    base_url: str
    database_url: str
    users: dict[str, StaffUser]
    screenshot_dir: Path
    session_factory: Any = None
    signed_in_states: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def _ui_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE", "sqlite") == "postgres":
        with fresh_postgres_database(prefix="claims_ui") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('ui-db') / 'claims.sqlite3'}"


def _staff_users(factory: Any) -> dict[str, StaffUser]:
    """One user per role with a confirmed TOTP factor, plus ``newcomer`` without one."""
    import pyotp

    from claims_server.db import unit_of_work
    from claims_server.models import Role
    from claims_server.security.authn import create_user
    from claims_server.security.principal import acting_as, system_principal

    users: dict[str, StaffUser] = {}
    with acting_as(system_principal("test:ui")), unit_of_work(factory) as session:
        for key, role in [*((r, r) for r in UI_ROLES), ("newcomer", "biller"), ("leaver", "biller")]:
            user = create_user(
                session, username=f"ui-{key}", display_name=f"UI {key}", role=Role(role), password=UI_PASSWORD
            )
            secret = None
            if key != "newcomer":
                secret = pyotp.random_base32()
                user.totp_secret, user.totp_enabled = secret, True
            users[key] = StaffUser(role, user.username, secret)
    return users


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """The demo practice after its billing day, served on 127.0.0.1 (one per test session)."""
    from claims_server.db import make_engine, make_session_factory
    from claims_server.demo import run_demo

    screenshots = Path(
        os.environ.get("UI_SCREENSHOT_DIR") or tmp_path_factory.getbasetemp() / "ui-screenshots"
    )
    screenshots.mkdir(parents=True, exist_ok=True)
    _SCREENSHOT_DIRS.append(screenshots)
    with _ui_database(tmp_path_factory) as url:
        run_demo(url, tmp_path_factory.mktemp("ui-demo"), today=date.today())
        engine = make_engine(url)
        factory = make_session_factory(engine)
        users = _staff_users(factory)
        # Enough sign-ins for a test run from one address; production keeps the default.
        with start_server(
            url, tmp_path_factory.mktemp("ui-instance"), RATE_LIMIT_LOGIN="60 per minute"
        ) as base:
            yield UiServer(base, url, users, screenshots, factory)
        engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable(f"chromium not found at {CHROMIUM} (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_in(page: Any, server: UiServer, user: StaffUser, *, next_path: str | None = None) -> None:
    """Sign in through the form (username, password, authenticator code)."""
    page.goto(server.url("/ui/sign-in" + (f"?next={next_path}" if next_path else "")))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    if user.totp_secret:
        page.get_by_label("Authenticator code").fill(user.code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.fixture
def ui_page(browser: Any, ui_server: UiServer) -> Iterator[Callable[..., Any]]:
    """``ui_page("biller")``: a new page at 1280x900, signed in as that role (cookies reused)."""
    contexts: list[Any] = []

    def make(role: str = "biller", *, signed_in: bool = True) -> Any:
        state = ui_server.signed_in_states.get(role) if signed_in else None
        context = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=state)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        if signed_in and state is None:
            sign_in(page, ui_server, ui_server.users[role])
            assert "/ui/sign-in" not in page.url, page.content()[:2000]
            ui_server.signed_in_states[role] = context.storage_state()
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def empty_office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server started from an EMPTY database, the office set up through the API only
    (tests/e2e/office.py: practice, provider, folder route, payer, patient, coverage, fee
    schedule). Staff users are made as ``ui_server``'s are, plus an ``admin`` whose API
    session (``POST /api/v1/auth/login``) did the set-up. No demo data at all."""
    import pyotp

    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.migrate import upgrade
    from claims_server.models import Role
    from claims_server.security.authn import create_user
    from claims_server.security.principal import acting_as, system_principal
    from tests.e2e.office import EmptyOffice, set_up_office, sign_in_api

    screenshots = Path(
        os.environ.get("UI_SCREENSHOT_DIR") or tmp_path_factory.getbasetemp() / "ui-screenshots"
    )
    screenshots.mkdir(parents=True, exist_ok=True)
    _SCREENSHOT_DIRS.append(screenshots)
    with _ui_database(tmp_path_factory) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        users = _staff_users(factory)
        with acting_as(system_principal("test:empty-office")), unit_of_work(factory) as session:
            admin = create_user(
                session, username="ui-admin", display_name="UI admin", role=Role.ADMIN, password=UI_PASSWORD
            )
            admin.totp_secret, admin.totp_enabled = pyotp.random_base32(), True
            users["admin"] = StaffUser("admin", admin.username, admin.totp_secret)
        instance = tmp_path_factory.mktemp("office-instance")
        # The server's own scheduler polls the clearinghouse every 2 s here (5 min by default).
        with start_server(
            url,
            instance,
            RATE_LIMIT_LOGIN="60 per minute",
            SCHEDULER_INTERVALS="poll-clearinghouse-inboxes=2",
        ) as base:
            admin_user = users["admin"]
            token = sign_in_api(base, admin_user.username, admin_user.password, admin_user.code())
            ids = set_up_office(base, token)
            yield EmptyOffice(UiServer(base, url, users, screenshots, factory), instance, token, ids)
        engine.dispose()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _SCREENSHOT_DIRS:
        if folder.is_dir() and any(folder.iterdir()):
            terminalreporter.write_line(f"workspace screenshots: {folder}")
