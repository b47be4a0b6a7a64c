"""pyx12's implementation-guide maps compiled into compact tables of our own, cached on disk.

pyx12 ships each TR3 as an XML map (loops, segments, elements, usage, repeats, code
lists) plus a data element dictionary (``dataele.xml``: type and min/max length) and
external code sets (``codes.xml``: states, POS, ...). Parsing the 1.1 MB 837P map takes
about a second, so we compile each map once into plain slotted objects, pickle them
under a cache directory keyed by the pyx12 version and a hash of the XML inputs, and
load that pickle (a few milliseconds) in every later process.

Only ``xml.etree`` and ``pickle`` from the standard library are used; the map files are
read, never modified.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pyx12

# Bump when the compiled layout changes, so stale caches are ignored.
COMPILER_VERSION = "4"
MAP_DIR = Path(pyx12.__file__).parent / "map"
UNBOUNDED = 1 << 30


@dataclass(slots=True, eq=False)
class ElementSpec:
    """One simple data element (or one component of a composite)."""

    ref: str  # "CLM01", "CLM05-1": the reference a 999 IK4 / finding quotes
    seq: int
    usage: str  # R, S or N
    data_element: str
    data_type: str  # AN, ID, N0, N2, R, DT, TM, B ...
    min_len: int
    max_len: int
    codes: frozenset[str] | None
    external: str | None
    regex: str | None
    name: str
    max_use: int = 1


@dataclass(slots=True, eq=False)
class CompositeSpec:
    ref: str
    seq: int
    usage: str
    data_element: str
    name: str
    components: tuple[ElementSpec, ...]
    max_use: int = 1


@dataclass(slots=True, eq=False)
class SegmentSpec:
    """A segment at one place in the guide (REF*EI in 2010AA is not REF*G2 in 2310B)."""

    uid: int
    id: str
    usage: str
    pos: int
    max_use: int
    name: str
    elements: tuple[ElementSpec | CompositeSpec, ...]
    # Syntax notes as (kind, element numbers): P0102 -> ("P", (1, 2)).
    syntax: tuple[tuple[str, tuple[int, ...]], ...]
    # Where the qualifier that tells same-id segments apart sits: (element, component
    # or 0, allowed codes). None: any segment with this id matches.
    qualifier: tuple[int, int, frozenset[str]] | None
    parent: LoopSpec | None = None

    @property
    def is_segment(self) -> bool:
        return True

    def matches(self, elements: list[str], component_separator: str) -> bool:
        """Does a data segment (its elements) match this node, qualifier included?"""
        q = self.qualifier
        if q is None:
            return True
        index, sub, codes = q
        value = elements[index] if index < len(elements) else ""
        if sub:
            value = value.split(component_separator, 1)[0] if component_separator else value
        return value in codes


@dataclass(slots=True, eq=False)
class LoopSpec:
    uid: int
    id: str
    usage: str
    pos: int
    repeat: int
    name: str
    kind: str  # "explicit", "wrapper" or "implicit"
    children: list[SegmentSpec | LoopSpec] = field(default_factory=list)
    parent: LoopSpec | None = None

    @property
    def is_segment(self) -> bool:
        return False

    @property
    def first(self) -> SegmentSpec | LoopSpec | None:
        return self.children[0] if self.children else None

    def path(self) -> str:
        parts: list[str] = []
        node: LoopSpec | None = self
        while node is not None:
            parts.append(node.id)
            node = node.parent
        return "/" + "/".join(reversed(parts))


@dataclass(slots=True, eq=False)
class CompiledMap:
    """One implementation guide: the ST loop tree plus the envelope segment specs."""

    name: str  # map file name, e.g. "837.5010.X222.A1.xml"
    transaction_id: str  # "837"
    title: str
    transaction: LoopSpec  # the ST_LOOP: ST, HEADER/DETAIL/FOOTER ..., SE
    envelope: dict[str, SegmentSpec]  # ISA, GS, GE, IEA
    external_codes: dict[str, frozenset[str]]
    # For each segment id, the places whose value decides which node it matches;
    # the walker uses them to build a small memo key.
    qualifier_places: dict[str, tuple[tuple[int, int], ...]]
    qualifier_codes: dict[str, frozenset[str]]
    segment_count: int


class MapError(Exception):
    """A map file is missing or cannot be compiled."""


def _text(node: ET.Element, tag: str, default: str = "") -> str:
    value = node.get(tag)
    if value is None:
        value = node.findtext(tag)
    return value.strip() if value else default


def _repeat(value: str) -> int:
    value = value.replace("&gt;", ">").strip()
    if not value or value.startswith(">"):
        return UNBOUNDED
    try:
        return int(value)
    except ValueError:
        return UNBOUNDED


def _ref(segment_id: str, seq: int, sub: int = 0) -> str:
    return f"{segment_id}{seq:02d}" + (f"-{sub}" if sub else "")


class _Compiler:
    def __init__(self, data_elements: dict[str, tuple[str, int, int]], codesets: dict[str, frozenset[str]]):
        self.data_elements = data_elements
        self.codesets = codesets
        self.used_codesets: set[str] = set()
        self.uid = 0
        self.qualifier_places: dict[str, set[tuple[int, int]]] = {}
        self.qualifier_codes: dict[str, set[str]] = {}

    def next_uid(self) -> int:
        self.uid += 1
        return self.uid

    def element(self, node: ET.Element, segment_id: str, sub: int = 0) -> ElementSpec:
        seq = int(_text(node, "seq", "0") or 0)
        data_element = _text(node, "data_ele")
        data_type, min_len, max_len = self.data_elements.get(data_element, ("AN", 1, UNBOUNDED))
        codes: frozenset[str] | None = None
        external: str | None = None
        valid = node.find("valid_codes")
        if valid is not None:
            external = valid.get("external") or None
            listed = [c.text.strip() for c in valid.findall("code") if c.text is not None]
            if listed:
                codes = frozenset(listed)
            if external:
                self.used_codesets.add(external)
        regex = node.findtext("regex") or None
        ref = _ref(segment_id, sub, seq) if sub else _ref(segment_id, seq)
        return ElementSpec(
            ref=ref,
            seq=seq,
            usage=_text(node, "usage", "S"),
            data_element=data_element,
            data_type=data_type,
            min_len=min_len,
            max_len=max_len,
            codes=codes,
            external=external,
            regex=regex,
            name=_text(node, "name"),
            max_use=_repeat(_text(node, "max_use")) if _text(node, "max_use") else 1,
        )

    def composite(self, node: ET.Element, segment_id: str) -> CompositeSpec:
        seq = int(_text(node, "seq", "0") or 0)
        components = tuple(self.element(child, segment_id, sub=seq) for child in node.findall("element"))
        return CompositeSpec(
            ref=_ref(segment_id, seq),
            seq=seq,
            usage=_text(node, "usage", "S"),
            data_element=_text(node, "data_ele"),
            name=_text(node, "name"),
            components=components,
            max_use=_repeat(_text(node, "max_use")) if _text(node, "max_use") else 1,
        )

    def segment(self, node: ET.Element) -> SegmentSpec:
        segment_id = node.get("xid", "")
        elements: list[ElementSpec | CompositeSpec] = []
        for child in node:
            if child.tag == "element":
                elements.append(self.element(child, segment_id))
            elif child.tag == "composite":
                elements.append(self.composite(child, segment_id))
        elements.sort(key=lambda e: e.seq)
        syntax: list[tuple[str, tuple[int, ...]]] = []
        for rule in node.findall("syntax"):
            text = (rule.text or "").strip()
            if len(text) >= 5 and text[0] in "PRCLE" and text[1:].isdigit():
                numbers = tuple(int(text[i : i + 2]) for i in range(1, len(text), 2))
                syntax.append((text[0], numbers))
        if segment_id == "ST":
            # pyx12's 835 map marks ST03 "Not Used", but every 5010 HIPAA TR3 (X221A1
            # included) requires ST03 to carry the implementation guide: a map bug.
            for element in elements:
                if isinstance(element, ElementSpec) and element.seq == 3 and element.usage == "N":
                    element.usage = "S"
        spec = SegmentSpec(
            uid=self.next_uid(),
            id=segment_id,
            usage=_text(node, "usage", "S"),
            pos=int(_text(node, "pos", "0") or 0),
            max_use=_repeat(_text(node, "max_use", ">1")),
            name=_text(node, "name"),
            elements=tuple(elements),
            syntax=tuple(syntax),
            qualifier=self.qualifier(segment_id, elements),
        )
        if spec.qualifier is not None:
            index, sub, codes = spec.qualifier
            self.qualifier_places.setdefault(segment_id, set()).add((index, sub))
            self.qualifier_codes.setdefault(segment_id, set()).update(codes)
        return spec

    @staticmethod
    def qualifier(
        segment_id: str, elements: list[ElementSpec | CompositeSpec]
    ) -> tuple[int, int, frozenset[str]] | None:
        """Which element tells same-id segments apart (same choice as pyx12's matcher).

        The TR3 distinguishes repeated segment ids by a required ID-type qualifier in
        element 01 (REF*EI vs REF*G2), its first component (SV1, HI), ENT02 in the 820,
        and HL03 for hierarchical levels.
        """
        by_seq = {e.seq: e for e in elements}
        first = by_seq.get(1)
        if isinstance(first, ElementSpec) and first.data_type == "ID" and first.usage == "R" and first.codes:
            return (1, 0, first.codes)
        second = by_seq.get(2)
        if (
            segment_id == "ENT"
            and isinstance(second, ElementSpec)
            and second.data_type == "ID"
            and second.codes
        ):
            return (2, 0, second.codes)
        if isinstance(first, CompositeSpec) and first.components:
            head = first.components[0]
            if head.codes and (head.data_type == "ID" or (segment_id == "CTX" and head.data_type == "AN")):
                return (1, 1, head.codes)
        third = by_seq.get(3)
        if segment_id == "HL" and isinstance(third, ElementSpec) and third.codes:
            return (3, 0, third.codes)
        return None

    def loop(self, node: ET.Element, parent: LoopSpec | None) -> LoopSpec:
        spec = LoopSpec(
            uid=self.next_uid(),
            id=node.get("xid", ""),
            usage=_text(node, "usage", "S"),
            pos=int(_text(node, "pos", "0") or 0),
            repeat=_repeat(_text(node, "repeat", ">1")),
            name=_text(node, "name"),
            kind=node.get("type", "implicit"),
            parent=parent,
        )
        children: list[SegmentSpec | LoopSpec] = []
        for child in node:
            if child.tag == "segment":
                seg = self.segment(child)
                seg.parent = spec
                children.append(seg)
            elif child.tag == "loop":
                children.append(self.loop(child, spec))
        # pyx12 orders children by position; Python's sort is stable for equal positions.
        children.sort(key=lambda c: c.pos)
        spec.children = children
        return spec


def _find_loop(loop: LoopSpec, loop_id: str) -> LoopSpec | None:
    if loop.id == loop_id:
        return loop
    for child in loop.children:
        if isinstance(child, LoopSpec):
            found = _find_loop(child, loop_id)
            if found is not None:
                return found
    return None


def _load_data_elements(path: Path) -> dict[str, tuple[str, int, int]]:
    table: dict[str, tuple[str, int, int]] = {}
    for node in ET.parse(path).getroot():
        number = node.get("ele_num")
        if number:
            table[number] = (
                node.get("data_type", "AN"),
                int(node.get("min_len", "1")),
                int(node.get("max_len", str(UNBOUNDED))),
            )
    return table


def _load_codesets(path: Path) -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for codeset in ET.parse(path).getroot().findall("codeset"):
        key = (codeset.findtext("id") or "").strip()
        if key:
            table[key] = frozenset(c.text.strip() for c in codeset.iter("code") if c.text)
    return table


def compile_map(map_name: str, map_dir: Path = MAP_DIR) -> CompiledMap:
    """Parse one pyx12 map XML (plus dataele.xml and codes.xml) into a :class:`CompiledMap`."""
    path = map_dir / map_name
    if not path.is_file():
        raise MapError(f"pyx12 map file {map_name} not found in {map_dir}")
    try:
        root = ET.parse(path).getroot()
        compiler = _Compiler(
            _load_data_elements(map_dir / "dataele.xml"), _load_codesets(map_dir / "codes.xml")
        )
        top = None
        for child in root:
            if child.tag == "loop":
                top = compiler.loop(child, None)
                break
    except (ET.ParseError, ValueError, OSError) as exc:
        raise MapError(f"pyx12 map file {map_name} cannot be compiled: {exc}") from exc
    if top is None:
        raise MapError(f"pyx12 map file {map_name} has no ISA loop")
    st_loop = _find_loop(top, "ST_LOOP")
    gs_loop = _find_loop(top, "GS_LOOP")
    if st_loop is None or gs_loop is None:
        raise MapError(f"pyx12 map file {map_name} has no GS/ST loop")
    envelope: dict[str, SegmentSpec] = {}
    for loop in (top, gs_loop):
        for child in loop.children:
            if isinstance(child, SegmentSpec):
                envelope[child.id] = child
    st_loop.parent = None
    return CompiledMap(
        name=map_name,
        transaction_id=root.get("xid", ""),
        title=(root.findtext("name") or "").strip(),
        transaction=st_loop,
        envelope=envelope,
        external_codes={k: v for k, v in compiler.codesets.items() if k in compiler.used_codesets},
        qualifier_places={k: tuple(sorted(v)) for k, v in compiler.qualifier_places.items()},
        qualifier_codes={k: frozenset(v) for k, v in compiler.qualifier_codes.items()},
        segment_count=compiler.uid,
    )


def cache_dir() -> Path:
    """Where compiled maps live: $CLAIMS_SERVER_CACHE_DIR, else ~/.cache/claims-server."""
    base = os.environ.get("CLAIMS_SERVER_CACHE_DIR")
    if base:
        return Path(base) / "edi-maps"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "claims-server" / "edi-maps"


def _fingerprint(map_name: str, map_dir: Path) -> str:
    digest = hashlib.sha256(COMPILER_VERSION.encode())
    for name in (map_name, "dataele.xml", "codes.xml"):
        digest.update(name.encode())
        digest.update((map_dir / name).read_bytes())
    return digest.hexdigest()[:16]


_LOADED: dict[tuple[str, str], CompiledMap] = {}


def load_map(map_name: str, map_dir: Path = MAP_DIR) -> CompiledMap:
    """The compiled map: from this process, else the disk cache, else compiled now and cached."""
    key = (str(map_dir), map_name)
    cached = _LOADED.get(key)
    if cached is not None:
        return cached
    if not (map_dir / map_name).is_file():
        raise MapError(f"pyx12 map file {map_name} not found in {map_dir}")
    stem = re.sub(r"[^A-Za-z0-9.]", "_", map_name.removesuffix(".xml"))
    file_name = f"{stem}-pyx12-{pyx12.__version__}-{_fingerprint(map_name, map_dir)}.pickle"
    compiled: CompiledMap | None = None
    for directory in (cache_dir(), Path(tempfile.gettempdir()) / "claims-server-edi-maps"):
        path = directory / file_name
        try:
            with open(path, "rb") as fh:
                loaded = pickle.load(fh)
            if isinstance(loaded, CompiledMap):
                compiled = loaded
                break
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
            continue
    if compiled is None:
        compiled = compile_map(map_name, map_dir)
        _store(compiled, file_name)
    _LOADED[key] = compiled
    return compiled


def _store(compiled: CompiledMap, file_name: str) -> None:
    """Write the pickle atomically; a read-only home falls back to the temp dir."""
    for directory in (cache_dir(), Path(tempfile.gettempdir()) / "claims-server-edi-maps"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(compiled, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, directory / file_name)
            return
        except OSError:
            continue


@dataclass(frozen=True, slots=True)
class MapEntry:
    icvn: str  # ISA12: 00401 / 00501
    vriic: str  # GS08
    fic: str  # GS01
    file: str
    abbreviation: str


_INDEX: list[MapEntry] | None = None


def map_index(map_dir: Path = MAP_DIR) -> list[MapEntry]:
    """pyx12's maps.xml: which map serves which ISA12 / GS08 / GS01."""
    global _INDEX
    if _INDEX is None:
        entries: list[MapEntry] = []
        root = ET.parse(map_dir / "maps.xml").getroot()
        for version in root.findall("version"):
            icvn = version.get("icvn", "")
            for entry in version.findall("map"):
                if entry.text and entry.get("vriic"):
                    entries.append(
                        MapEntry(
                            icvn,
                            entry.get("vriic", ""),
                            entry.get("fic", ""),
                            entry.text.strip(),
                            entry.get("abbr", ""),
                        )
                    )
        _INDEX = entries
    return _INDEX


def find_map_name(icvn: str, vriic: str, fic: str) -> str | None:
    """The map file for a functional group, or None when pyx12 has no guide for it."""
    for entry in map_index():
        if entry.icvn == icvn and entry.vriic == vriic and entry.fic == fic:
            return entry.file
    # A 5010 GS08 under a mislabelled ISA12 still names its guide unambiguously.
    for entry in map_index():
        if entry.vriic == vriic and entry.fic == fic:
            return entry.file
    return None


def map_for(icvn: str, vriic: str, fic: str) -> CompiledMap | None:
    """pyx12's map for a functional group, else one of our own guides (:mod:`edi.guides`)."""
    name = find_map_name(icvn, vriic, fic)
    if name:
        return load_map(name)
    from edi.guides import guide_for  # imported late: the guides import this module

    return guide_for(vriic, fic)
