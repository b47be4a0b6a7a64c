"""Saved work-queue filters: a user's named query strings of the queue page, listed as links
above the table.

A saved filter is the queue page's query string (``queue=denied&sort=amount&order=desc``),
checked against the same rules as the page before it is stored, so a link from the list
always opens a page that works. Only the page's own filter keys are accepted, in a
canonical order, with blank values dropped. Name and query are typed by the user and
encrypted (``SavedFilter``); a user sees, and may delete, only their own: another user's
filter answers 404, as if it did not exist.

Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.fields import money_text_to_cents
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import AuditAction, Payer, SavedFilter, User
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import _REASON_RE, SORT_COLUMNS, SORT_ORDERS, STATUS_FILTERS

MAX_NAME = 80
MAX_QUERY = 500
#: Saved filters per user: a list of links above a table, not a database.
MAX_PER_USER = 50
#: The queue page's filter keys, in the order a saved query lists them.
FILTER_KEYS = (
    "queue",
    "payer",
    "assignee",
    "reason",
    "min_age",
    "max_age",
    "min_amount",
    "max_amount",
    "status",
    "sort",
    "order",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PUBLIC_ID = re.compile(r"^[0-9a-f]{32}$")


def _problem(field: str, rule: str, message: str) -> Unprocessable:
    return Unprocessable(f"{field}: {message}", errors=[{"field": field, "rule": rule, "message": message}])


def check_name(name: object) -> str:
    """The name stripped; 422 on ``name`` when blank, longer than 80 characters or with control characters."""
    if not isinstance(name, str) or not name.strip():
        raise _problem("name", "required", "give the filter a name")
    text = name.strip()
    if len(text) > MAX_NAME:
        raise _problem("name", "length", f"at most {MAX_NAME} characters")
    if _CONTROL.search(text):
        raise _problem("name", "characters", "no line breaks or control characters")
    return text


def _query_problem(message: str, rule: str = "filter") -> Unprocessable:
    return _problem("query", rule, message)


def canonical_query(session: Session, query: object) -> str:
    """``query`` as the queue page would read it, keys in ``FILTER_KEYS`` order, blanks dropped.

    422 on ``query`` naming the key when a key is unknown or repeated, or a value is not one
    the page accepts (an unknown queue, payer or person, a bad reason code, age or amount,
    an unknown status, sort or order).
    """
    if not isinstance(query, str):
        raise _query_problem("the query must be text", "type")
    text = query.strip().lstrip("?")
    if len(text) > MAX_QUERY:
        raise _query_problem(f"at most {MAX_QUERY} characters", "length")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=20)
    except ValueError:
        raise _query_problem("not a query string such as queue=denied&sort=amount") from None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in FILTER_KEYS:
            raise _query_problem(
                f"unknown filter {key[:20]!r}; filters are {', '.join(FILTER_KEYS)}", "filter_keys"
            )
        if key in values:
            raise _query_problem(f"{key} is given twice", "filter_keys")
        values[key] = value.strip()
    values = {k: v for k, v in values.items() if v}
    _check_values(session, values)
    return urlencode([(k, values[k]) for k in FILTER_KEYS if k in values])


def _check_values(session: Session, values: dict[str, str]) -> None:
    def bad(key: str, what: str) -> Unprocessable:
        return _query_problem(f"{key}: {what}")

    if "queue" in values and values["queue"] not in {q.value for q in WorkQueue}:
        raise bad("queue", "not a queue")
    if "status" in values and values["status"] not in STATUS_FILTERS:
        raise bad("status", f"one of {', '.join(STATUS_FILTERS)}")
    if "sort" in values and values["sort"] not in SORT_COLUMNS:
        raise bad("sort", f"one of {', '.join(SORT_COLUMNS)}")
    if "order" in values and values["order"] not in SORT_ORDERS:
        raise bad("order", "asc or desc")
    if "reason" in values and not _REASON_RE.match(values["reason"].upper()):
        raise bad("reason", "a code such as CO-16, PR-1 or N290")
    for key in ("min_age", "max_age"):
        if key in values and not (values[key].isascii() and values[key].isdigit() and len(values[key]) <= 5):
            raise bad(key, "a whole number of days")
    for key in ("min_amount", "max_amount"):
        if key in values:
            cents, problem = money_text_to_cents(values[key], allow_zero=True)
            if cents is None:
                raise bad(key, problem or "an amount such as 25.00")
    if "payer" in values and (
        not _PUBLIC_ID.match(values["payer"])
        or session.scalar(select(Payer.id).where(Payer.public_id == values["payer"])) is None
    ):
        raise bad("payer", "no payer has this id")
    assignee = values.get("assignee")
    if (
        assignee
        and assignee not in ("me", "unassigned")
        and (
            not _PUBLIC_ID.match(assignee)
            or session.scalar(select(User.id).where(User.public_id == assignee)) is None
        )
    ):
        raise bad("assignee", "no user has this id (or use me, unassigned)")


def list_saved_filters(session: Session, user: User) -> list[SavedFilter]:
    """``user``'s saved filters, oldest first (the order they were saved)."""
    return list(
        session.scalars(select(SavedFilter).where(SavedFilter.user_id == user.id).order_by(SavedFilter.id))
    )


def save_filter(session: Session, user: User, name: object, query: object) -> SavedFilter:
    """Save ``query`` (checked and made canonical) under ``name`` for ``user``; audited without
    the name or the query (typed text). 422 on ``name`` when it is taken (case-insensitive),
    or when the user has ``MAX_PER_USER`` already."""
    text = check_name(name)
    canonical = canonical_query(session, query)
    existing = list_saved_filters(session, user)
    if any(f.name.casefold() == text.casefold() for f in existing):
        raise _problem("name", "unique", "you have a filter with this name already")
    if len(existing) >= MAX_PER_USER:
        raise _problem("name", "limit", f"at most {MAX_PER_USER} saved filters; delete one first")
    saved = SavedFilter(
        public_id=new_public_id(), user_id=user.id, name=text, query=canonical, created_at=utcnow()
    )
    session.add(saved)
    session.flush()
    audit(
        session,
        action=AuditAction.CREATE,
        event_type="saved_filter.create",
        entity_type="saved_filter",
        entity_id=saved.public_id,
        details={"keys": [k for k, _ in parse_qsl(canonical)]},
    )
    return saved


def get_saved_filter(session: Session, user: User, public_id: str) -> SavedFilter:
    """``user``'s filter ``public_id``; 404 when there is none (or it is someone else's)."""
    saved = session.scalar(
        select(SavedFilter).where(SavedFilter.public_id == public_id, SavedFilter.user_id == user.id)
    )
    if saved is None:
        raise NotFound("you have no saved filter with this id")
    return saved


def delete_saved_filter(session: Session, user: User, public_id: str) -> None:
    """Delete ``user``'s filter ``public_id`` (404 when it is not theirs); audited."""
    saved = get_saved_filter(session, user, public_id)
    session.delete(saved)
    audit(
        session,
        action=AuditAction.DELETE,
        event_type="saved_filter.delete",
        entity_type="saved_filter",
        entity_id=saved.public_id,
    )
