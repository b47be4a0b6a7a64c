"""Finding codes as a biller types them: by code prefix or by words of the description.

Charge entry asks "which code is 'diabetes without complications'?" and "what is J1100?"
dozens of times a minute, so each code set gets one in-memory :class:`WordIndex`, built on
first use and kept for the process (about 0.5 s for ICD-10-CM's 75,000 billable codes,
then a search is a few bisects and set intersections: well under a millisecond).

- Diagnoses: billable ICD-10-CM codes only, of the release in force on the date of
  service (the latest loaded release when none covers it, as the scrubber does).
- Procedures: HCPCS Level II codes valid on the date of service, and CPT codes with their
  descriptions only when the practice has loaded its licensed CPT file (``coding.cpt.use``).
  Without it a well-formed CPT code is answered with the code alone: CPT descriptions are
  the AMA's and none ship with the project.

A query that looks like a code (``E11.9``, ``e119``, ``992``, ``J11``) is a code-prefix
search; anything else is a word search: every word must start a word of the description
(``diab type 2`` finds E11.9), shorter descriptions first (the general code before its
specific variants).
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from coding import cpt, hcpcs, icd10cm
from coding.icd10cm import Icd10CmRelease

ICD10CM = "ICD-10-CM"
HCPCS = "HCPCS"
CPT = "CPT"
DEFAULT_LIMIT = 15
MAX_LIMIT = 50

_WORD = re.compile(r"[a-z0-9]+")
_ICD_CODE_QUERY = re.compile(r"^[A-Z][0-9][0-9A-Z]{0,5}$")
_PROCEDURE_CODE_QUERY = re.compile(r"^(?=.*[0-9])[A-Z0-9]{1,5}$")


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """One suggestion: the code as printed (``E11.9``), its description (None: the code alone)."""

    code: str
    description: str | None
    system: str


def words_of(text: str) -> list[str]:
    """Lower-case words of letters and digits (the index's and the query's tokenizer)."""
    return _WORD.findall(text.lower())


class WordIndex:
    """Codes with descriptions, searchable by code prefix and by word prefixes."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        """``entries``: (code, description) in the code set's own order (ties rank by it)."""
        self._codes: list[str] = []
        self._descriptions: list[str] = []
        postings: dict[str, list[int]] = {}
        for number, (code, description) in enumerate(entries):
            self._codes.append(code)
            self._descriptions.append(description)
            for word in set(words_of(description)):
                postings.setdefault(word, []).append(number)
        self._by_code = sorted(range(len(self._codes)), key=self._codes.__getitem__)
        self._sorted_codes = [self._codes[i] for i in self._by_code]
        self._vocabulary = sorted(postings)
        self._postings = [frozenset(postings[word]) for word in self._vocabulary]
        self._position = {word: i for i, word in enumerate(self._vocabulary)}

    def __len__(self) -> int:
        return len(self._codes)

    def description(self, code: str) -> str | None:
        i = bisect.bisect_left(self._sorted_codes, code)
        if i < len(self._sorted_codes) and self._sorted_codes[i] == code:
            return self._descriptions[self._by_code[i]]
        return None

    def by_code(self, prefix: str, limit: int) -> list[tuple[str, str]]:
        """Codes starting with ``prefix`` (the exact code first, then in code order)."""
        start = bisect.bisect_left(self._sorted_codes, prefix)
        out: list[tuple[str, str]] = []
        for i in range(start, min(start + limit, len(self._sorted_codes))):
            code = self._sorted_codes[i]
            if not code.startswith(prefix):
                break
            out.append((code, self._descriptions[self._by_code[i]]))
        return out

    def _matching(self, word: str, *, whole: bool) -> frozenset[int] | set[int]:
        """Entries with a description word equal to ``word`` (``whole``) or starting with it."""
        if whole and word in self._position:
            return self._postings[self._position[word]]
        start = bisect.bisect_left(self._vocabulary, word)
        end = bisect.bisect_left(self._vocabulary, word + "\uffff", start)
        if end - start == 1:
            return self._postings[start]
        found: set[int] = set()
        for i in range(start, end):
            found.update(self._postings[i])
        return found

    def by_words(self, query: str, limit: int) -> list[tuple[str, str]]:
        """Entries whose description has every query word (the last one as a prefix: the biller
        may still be typing it; the others whole when such a word exists, else as prefixes)."""
        words = words_of(query)
        if not words:
            return []
        sets = [self._matching(w, whole=i < len(words) - 1) for i, w in enumerate(words)]
        sets.sort(key=len)
        found = set(sets[0])
        for other in sets[1:]:
            found.intersection_update(other)
            if not found:
                return []
        ranked = sorted(found, key=lambda i: (len(self._descriptions[i]), i))[:limit]
        return [(self._codes[i], self._descriptions[i]) for i in ranked]


_indexes: dict[tuple[str, int], tuple[object, WordIndex]] = {}
_lock = threading.Lock()


def _index(kind: str, source: object, build: Iterable[tuple[str, str]] | None = None) -> WordIndex:
    """The index of ``source`` (a release or code set object), built once per process.

    Keyed by the object's identity and holding a reference to it, so a code set replaced
    with ``hcpcs.use``/``cpt.use`` gets a fresh index and the old id is never reused.
    """
    key = (kind, id(source))
    cached = _indexes.get(key)
    if cached is not None and cached[0] is source:
        return cached[1]
    with _lock:
        cached = _indexes.get(key)
        if cached is None or cached[0] is not source:
            entries = build if build is not None else ()
            _indexes[key] = (source, WordIndex(entries))
        return _indexes[key][1]


def _icd_index(release: Icd10CmRelease) -> WordIndex:
    def entries() -> Iterable[tuple[str, str]]:
        for code in release.codes(billable_only=True):
            yield code, release.description(code) or ""

    return _index(ICD10CM, release, entries())


def _hcpcs_index(code_set: hcpcs.HcpcsCodeSet) -> WordIndex:
    def entries() -> Iterable[tuple[str, str]]:
        for code in code_set.codes():
            found = code_set.get(code)
            if found is not None:
                yield code, found.long_description or found.short_description

    return _index(HCPCS, code_set, entries())


def _cpt_index(code_set: cpt.CptCodeSet) -> WordIndex:
    def entries() -> Iterable[tuple[str, str]]:
        for code in code_set.codes():
            found = code_set.get(code)
            if found is not None:
                yield code, found.long_description or found.short_description

    return _index(CPT, code_set, entries())


def diagnosis_release(dos: date | None) -> Icd10CmRelease:
    """The ICD-10-CM release in force on ``dos``; the latest loaded one when none covers it."""
    code_set = icd10cm.default()
    return (code_set.release_for(dos) if dos is not None else None) or code_set.latest


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def search_diagnoses(query: str, dos: date | None = None, *, limit: int = DEFAULT_LIMIT) -> list[CodeMatch]:
    """Billable ICD-10-CM codes for the date of service, by code prefix or by words."""
    text = query.strip()
    index = _icd_index(diagnosis_release(dos))
    code = icd10cm.normalize(text)
    if _ICD_CODE_QUERY.match(code):
        found = index.by_code(code, _limit(limit))
    else:
        found = index.by_words(text, _limit(limit))
    return [CodeMatch(icd10cm.with_dot(c), d, ICD10CM) for c, d in found]


def describe_diagnosis(code: str, dos: date | None = None) -> CodeMatch | None:
    """The billable code with its description, or None (unknown, or a header, on that date)."""
    key = icd10cm.normalize(code)
    description = _icd_index(diagnosis_release(dos)).description(key)
    return None if description is None else CodeMatch(icd10cm.with_dot(key), description, ICD10CM)


def search_procedures(query: str, dos: date | None = None, *, limit: int = DEFAULT_LIMIT) -> list[CodeMatch]:
    """HCPCS Level II codes valid on ``dos`` and CPT codes, by code prefix or by words.

    CPT codes are found only in a loaded licensed file; without one, a complete CPT-format
    code is answered alone (no description), so the biller may still key it.
    """
    text = query.strip()
    limit = _limit(limit)
    code_set = hcpcs.default()
    licensed = cpt.licensed()
    indexes: list[tuple[str, WordIndex]] = [(HCPCS, _hcpcs_index(code_set))]
    if licensed is not None:
        indexes.insert(0, (CPT, _cpt_index(licensed)))
    code = text.upper()
    is_code = bool(_PROCEDURE_CODE_QUERY.match(code))
    out: list[CodeMatch] = []
    for system, index in indexes:
        found = index.by_code(code, limit) if is_code else index.by_words(text, limit)
        for c, description in found:
            if system == HCPCS and dos is not None and not code_set.is_valid(c, dos):
                continue
            out.append(CodeMatch(c, description, system))
    if is_code and licensed is None and len(code) == 5 and cpt.is_cpt_format(code):
        out.insert(0, CodeMatch(code, None, CPT))
    if not is_code:
        out.sort(key=lambda m: len(m.description or ""))
    return out[:limit]


def describe_procedure(code: str, dos: date | None = None) -> CodeMatch | None:
    """A procedure code with its description: HCPCS valid on ``dos``, or CPT (described only
    from a licensed file; a CPT-format code alone without one). None when it is neither."""
    key = code.strip().upper()
    licensed = cpt.licensed()
    if licensed is not None:
        found = licensed.get(key)
        if found is not None:
            return CodeMatch(key, found.long_description or found.short_description, CPT)
    code_set = hcpcs.default()
    level2 = code_set.get(key)
    if level2 is not None and (dos is None or code_set.is_valid(key, dos)):
        return CodeMatch(key, level2.long_description or level2.short_description, HCPCS)
    if licensed is None and len(key) == 5 and cpt.is_cpt_format(key):
        return CodeMatch(key, None, CPT)
    return None


def warm_up() -> None:
    """Build the indexes now (a server may call this at start so the first biller does not wait)."""
    _icd_index(diagnosis_release(None))
    _hcpcs_index(hcpcs.default())
    licensed = cpt.licensed()
    if licensed is not None:
        _cpt_index(licensed)
