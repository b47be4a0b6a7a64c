"""ICD-10-CM diagnosis codes: lookup, billable flag, validity by date of service, notes.

ICD-10-CM changes every October 1 (the federal fiscal year), with an occasional April
update. One :class:`Icd10CmRelease` is one fiscal year's tabular list; :class:`Icd10Cm`
holds several side by side and answers for a date of service with the release in
force that day. The shipped data is FY2026 (April 2026 release), built by
``coding/build_data.py`` into ``coding/data/``; it loads lazily on first use, or
explicitly with :func:`load`.

Codes are accepted with or without the dot and in any case; internally they are the
dotless upper-case form the 837 HI segment carries.
"""

from __future__ import annotations

import bisect
import gzip
import json
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from coding.datafiles import DATA_DIR, ICD_DESCRIPTIONS_FILE, ICD_FILE, ICD_NOTES_FILE, SECTION_MARK


def normalize(code: str) -> str:
    """Dotless, upper-case, trimmed: the form the 837 HI segment carries."""
    return code.strip().replace(".", "").upper()


def with_dot(code: str) -> str:
    """The printed form, with the dot after the category (E119 -> E11.9)."""
    code = normalize(code)
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True, slots=True)
class IcdCode:
    code: str  # dotless
    description: str
    billable: bool
    block: str  # e.g. "A00-A09" (or "B20" for a single-category block)
    chapter: str  # "1".."22"


@dataclass(frozen=True, slots=True)
class Excludes1Conflict:
    """Two codes that the tabular list says are never reported together."""

    code: str  # the code whose (or whose ancestor's) Excludes1 note names the other
    excluded: str
    note_at: str  # the code, block ("@A00-A09") or chapter ("#1") that carries the note
    note: str


@dataclass(frozen=True, slots=True)
class SexRestriction:
    low: str
    high: str
    sex: str  # "F" or "M"
    source: str


def _in_range(code: str, low: str, high: str) -> bool:
    """Whether a dotless code lies in [low, high], both ends read as prefixes."""
    return code[: len(low)] >= low and code[: len(high)] <= high


class Icd10CmRelease:
    """One fiscal year's ICD-10-CM: every code, its description and billable flag."""

    def __init__(
        self, text: str, *, descriptions_path: Path | None = None, notes_path: Path | None = None
    ) -> None:
        sections = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in text.split(SECTION_MARK)}
        self.meta: dict[str, Any] = json.loads(sections["meta"])
        self.fiscal_year: int = int(self.meta["fiscal_year"])
        self.effective_from = date.fromisoformat(self.meta["effective_from"])
        self.effective_to = date.fromisoformat(self.meta["effective_to"])
        self.source: str = self.meta["source"]
        self._billable: frozenset[str] = frozenset(sections["billable"].split("\n"))
        self._headers: frozenset[str] = frozenset(sections["headers"].split("\n"))
        self._chapters: list[tuple[str, str, str, str]] = [
            tuple(line.split("\t", 3))  # type: ignore[misc]
            for line in sections["chapters"].split("\n")
        ]
        block_rows = [line.split("\t", 2) for line in sections["blocks"].split("\n")]
        self._block_lows = [row[0].split("-")[0] for row in block_rows]
        self._blocks: list[tuple[str, str, str]] = [(r[0], r[1], r[2]) for r in block_rows]
        self.sex_restrictions: tuple[SexRestriction, ...] = tuple(
            SexRestriction(r["low"], r["high"], r["sex"], f"ICD-10-CM tabular title: {r['title']}")
            for r in self.meta.get("sex_restrictions", [])
        )
        self._descriptions_path = descriptions_path
        self._described: tuple[list[str], dict[str, str]] | None = None
        self._notes_path = notes_path
        self._notes: dict[str, list[tuple[str, str, str, str]]] | None = None
        self._lazy_lock = threading.Lock()
        self._excludes1_cache: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}
        self._sex_cache: dict[str, SexRestriction | None] = {}

    def __len__(self) -> int:
        return len(self._billable) + len(self._headers)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.exists(code)

    def covers(self, dos: date) -> bool:
        return self.effective_from <= dos <= self.effective_to

    def exists(self, code: str) -> bool:
        """The code is in this release's tabular list (billable or a header)."""
        if code in self._billable or code in self._headers:
            return True
        key = normalize(code)
        return key in self._billable or key in self._headers

    def is_billable(self, code: str) -> bool:
        """A leaf code, valid on a claim. Headers (categories with children) are not."""
        return code in self._billable or normalize(code) in self._billable

    def _load_descriptions(self) -> tuple[list[str], dict[str, str]]:
        if self._described is not None:
            return self._described
        with self._lazy_lock:
            if self._described is None:
                order: list[str] = []
                text_of: dict[str, str] = {}
                if self._descriptions_path is not None and self._descriptions_path.exists():
                    raw = gzip.decompress(self._descriptions_path.read_bytes()).decode("utf-8")
                    for line in raw.split("\n")[1:]:
                        code, _, text = line.partition("\t")
                        order.append(code)
                        text_of[code] = text
                self._described = (order, text_of)
        return self._described

    def description(self, code: str) -> str | None:
        return self._load_descriptions()[1].get(normalize(code))

    def get(self, code: str) -> IcdCode | None:
        key = normalize(code)
        if not self.exists(key):
            return None
        block, chapter = self.block_of(key)
        return IcdCode(key, self.description(key) or "", key in self._billable, block, chapter)

    def codes(self, *, billable_only: bool = False) -> list[str]:
        """Codes in tabular-list order."""
        order = self._load_descriptions()[0]
        return [c for c in order if c in self._billable] if billable_only else list(order)

    def children(self, code: str) -> list[str]:
        """Direct children (the codes one level deeper in the tabular list)."""
        key = normalize(code)
        if key not in self._headers:
            return []
        return [c for c in self._load_descriptions()[0] if c.startswith(key) and self.parent(c) == key]

    def parent(self, code: str) -> str | None:
        """The nearest enclosing code; None for a category (its parent is a block)."""
        key = normalize(code)
        for cut in range(len(key) - 1, 2, -1):
            if key[:cut] in self._headers:
                return key[:cut]
        return None

    def block_of(self, code: str) -> tuple[str, str]:
        """(block id, chapter number) for a code, by its 3-character category."""
        category = normalize(code)[:3]
        i = bisect.bisect_right(self._block_lows, category) - 1
        if i < 0:
            return "", ""
        block_id, chapter, _title = self._blocks[i]
        return block_id, chapter

    def chapter_title(self, chapter: str) -> str | None:
        for number, _low, _high, title in self._chapters:
            if number == chapter:
                return title
        return None

    def ancestors(self, code: str) -> list[str]:
        """Note carriers from the code up: the code, its parents, block ("@..."), chapter ("#...")."""
        key = normalize(code)
        chain = [key]
        parent = self.parent(key)
        while parent:
            chain.append(parent)
            parent = self.parent(parent)
        block, chapter = self.block_of(key)
        if block:
            chain.append("@" + block)
        if chapter:
            chain.append("#" + chapter)
        return chain

    # -- notes (Excludes1, use additional code, code first), loaded on first need --------

    def _load_notes(self) -> dict[str, list[tuple[str, str, str, str]]]:
        if self._notes is not None:
            return self._notes
        with self._lazy_lock:
            if self._notes is None:
                notes: dict[str, list[tuple[str, str, str, str]]] = {}
                if self._notes_path is not None and self._notes_path.exists():
                    text = gzip.decompress(self._notes_path.read_bytes()).decode("utf-8")
                    for line in text.split("\n")[1:]:
                        key, kind, low, high, note = line.split("\t", 4)
                        notes.setdefault(key, []).append((kind, low, high, note))
                self._notes = notes
        return self._notes

    def _notes_of(self, code: str, kind: str) -> list[tuple[str, str, str, str]]:
        notes = self._load_notes()
        found: list[tuple[str, str, str, str]] = []
        for carrier in self.ancestors(code):
            found.extend(
                (carrier, low, high, text) for k, low, high, text in notes.get(carrier, ()) if k == kind
            )
        return found

    def excludes1(self, code: str) -> list[str]:
        """Excludes1 notes that apply to the code (its own and its ancestors')."""
        seen: dict[str, None] = {}
        for _carrier, _low, _high, text in self._notes_of(code, "E"):
            seen.setdefault(text)
        return list(seen)

    def use_additional_code(self, code: str) -> list[str]:
        return [text for _c, _l, _h, text in self._notes_of(code, "U")]

    def code_first(self, code: str) -> list[str]:
        return [text for _c, _l, _h, text in self._notes_of(code, "F")]

    def _excludes1_index(self, key: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """Per code: the single-prefix references as one tuple (one C-level ``startswith``)
        and the true ranges, cached because a scrubber asks about the same codes all day."""
        cached = self._excludes1_cache.get(key)
        if cached is None:
            prefixes: list[str] = []
            ranges: list[tuple[str, str]] = []
            for _carrier, low, high, _text in self._notes_of(key, "E"):
                if low == high:
                    prefixes.append(low)
                else:
                    ranges.append((low, high))
            cached = (tuple(prefixes), tuple(ranges))
            if len(self._excludes1_cache) < 200_000:
                self._excludes1_cache[key] = cached
        return cached

    def excludes1_conflict(self, code: str, other: str) -> Excludes1Conflict | None:
        """The Excludes1 note, if any, that forbids reporting ``other`` with ``code``.

        Checked in one direction; call it both ways for a pair. A note pointing into
        the carrier's own subtree is ignored (it cannot exclude its own children).
        """
        key = code if code in self._billable else normalize(code)
        other_key = other if other in self._billable else normalize(other)
        prefixes, ranges = self._excludes1_index(key)
        if not other_key.startswith(prefixes) and not any(_in_range(other_key, lo, hi) for lo, hi in ranges):
            return None
        for carrier, low, high, text in self._notes_of(key, "E"):
            if not _in_range(other_key, low, high):
                continue
            if not carrier.startswith(("@", "#")) and other_key.startswith(carrier):
                continue
            return Excludes1Conflict(key, other_key, carrier, text)
        return None

    def sex_restriction(self, code: str) -> SexRestriction | None:
        """The derived sex restriction (female/male genital organ blocks) for a code.

        Every derived range is bounded by 3-character categories, so the answer depends
        on the category alone and is cached by it.
        """
        category = normalize(code)[:3]
        if category in self._sex_cache:
            return self._sex_cache[category]
        found = None
        for restriction in self.sex_restrictions:
            if _in_range(category, restriction.low, restriction.high):
                found = restriction
                break
        self._sex_cache[category] = found
        return found


class Icd10Cm:
    """Several ICD-10-CM releases side by side, chosen by date of service."""

    def __init__(self, releases: list[Icd10CmRelease] | None = None) -> None:
        self._releases: list[Icd10CmRelease] = []
        for release in releases or []:
            self.add_release(release)

    def add_release(self, release: Icd10CmRelease) -> None:
        self._releases = sorted(
            [r for r in self._releases if r.fiscal_year != release.fiscal_year] + [release],
            key=lambda r: r.effective_from,
        )

    @property
    def releases(self) -> list[Icd10CmRelease]:
        return list(self._releases)

    @property
    def latest(self) -> Icd10CmRelease:
        if not self._releases:
            raise LookupError("no ICD-10-CM release is loaded")
        return self._releases[-1]

    def release_for(self, dos: date) -> Icd10CmRelease | None:
        """The release in force on the date of service, or None if none loaded covers it."""
        for release in self._releases:
            if release.covers(dos):
                return release
        return None

    def is_valid(self, code: str, dos: date) -> bool:
        """The code is billable in the release in force on the date of service."""
        release = self.release_for(dos)
        return release is not None and release.is_billable(code)


def read_release(
    path: Path, *, descriptions_path: Path | None = None, notes_path: Path | None = None
) -> Icd10CmRelease:
    """Read one release written by ``coding/build_data.py`` (descriptions and notes load lazily)."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return Icd10CmRelease(text, descriptions_path=descriptions_path, notes_path=notes_path)


_default: Icd10Cm | None = None
_default_lock = threading.Lock()


def load() -> Icd10Cm:
    """Load the shipped releases now (idempotent); later calls return the same object."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                release = read_release(
                    DATA_DIR / ICD_FILE,
                    descriptions_path=DATA_DIR / ICD_DESCRIPTIONS_FILE,
                    notes_path=DATA_DIR / ICD_NOTES_FILE,
                )
                _default = Icd10Cm([release])
    return _default


def default() -> Icd10Cm:
    """The shipped code set, loaded lazily on first use."""
    return _default if _default is not None else load()
