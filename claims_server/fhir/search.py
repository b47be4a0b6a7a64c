"""Read and search plumbing shared by every resource type: parameters, paging, searchset Bundles.

Search parameters carry identifiers only (ids, control and trace numbers, dates), never
names, birth dates or member ids: a URL ends up in proxy and server logs, so PHI in a
query string would leak (HIPAA 164.312(e); see docs/fhir-mapping.md). An unknown
parameter is refused (400) rather than ignored, so a mistyped filter never returns every
row. Paging is the API's keyset paging (``api_common.pagination``): ``_count`` rows
after a signed ``_cursor``, with a Bundle ``next`` link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select
from sqlalchemy.orm import Session

from claims_server.api_common.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from claims_server.fhir.common import prune
from claims_server.fhir.outcome import FhirError, Issue

#: Parameters every search takes besides its own.
PAGING = ("_count", "_cursor")

Handler = Callable[[Select[Any], str], Select[Any]]


@dataclass
class SearchArgs:
    """A parsed query string: the search parameters (repeatable) and the page wanted."""

    params: dict[str, list[str]]
    count: int = DEFAULT_LIMIT
    cursor: str | None = None

    def filters(self) -> dict[str, Any]:
        """What the signed cursor is bound to (a cursor used with other filters is refused)."""
        return {k: sorted(v) for k, v in self.params.items()}


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as the CapabilityStatement lists it."""

    name: str
    type: str  # token, date, reference
    documentation: str


@dataclass
class ResourceKind:
    """How one FHIR resource type is read and searched."""

    name: str
    read: Callable[[Session, str], dict[str, Any]]
    search: Callable[[Session, SearchArgs], tuple[list[dict[str, Any]], str | None]]
    params: Sequence[SearchParam] = field(default_factory=tuple)
    create: bool = False
    profiles: Sequence[str] = field(default_factory=tuple)


def parse_args(query: Mapping[str, list[str]], allowed: Sequence[SearchParam]) -> SearchArgs:
    names = {p.name for p in allowed}
    params: dict[str, list[str]] = {}
    issues = []
    for key, values in query.items():
        if key in PAGING:
            continue
        if key not in names:
            issues.append(Issue(f"unknown or unsupported search parameter {key!r}", "not-supported", key))
            continue
        params[key] = [v for v in values if v != ""]
    count = DEFAULT_LIMIT
    raw_count = (query.get("_count") or [None])[0]
    if raw_count is not None:
        if not raw_count.isdigit() or not 1 <= int(raw_count) <= MAX_LIMIT:
            issues.append(Issue(f"_count must be between 1 and {MAX_LIMIT}", "value", "_count"))
        else:
            count = int(raw_count)
    if issues:
        raise FhirError(400, issues)
    return SearchArgs(params, count, (query.get("_cursor") or [None])[0])


def apply(query: Select[Any], args: SearchArgs, handlers: Mapping[str, Handler]) -> Select[Any]:
    """Each parameter value narrows the query (repeated parameters AND together, as FHIR says)."""
    for name, values in args.params.items():
        for value in values:
            query = handlers[name](query, value)
    return query


def page(
    session: Session,
    query: Select[Any],
    id_column: Any,
    args: SearchArgs,
    extra: Mapping[str, Any] | None = None,
) -> Page[Any]:
    return paginate(
        session,
        query,
        id_column,
        limit=args.count,
        cursor=args.cursor,
        filters={**args.filters(), **(extra or {})},
    )


def searchset(
    base: str, kind: str, resources: list[dict[str, Any]], args: SearchArgs, next_cursor: str | None
) -> dict[str, Any]:
    """A searchset Bundle with ``self`` and, when more rows remain, ``next`` links."""
    query: list[tuple[str, str]] = [(k, v) for k, values in sorted(args.params.items()) for v in values]
    query.append(("_count", str(args.count)))
    links = [{"relation": "self", "url": f"{base}/{kind}?{urlencode(query)}"}]
    if next_cursor:
        links.append(
            {"relation": "next", "url": f"{base}/{kind}?{urlencode([*query, ('_cursor', next_cursor)])}"}
        )
    return prune(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        }
    )


def not_found(kind: str) -> FhirError:
    return FhirError(404, [Issue(f"no {kind} with that id", "not-found")])
