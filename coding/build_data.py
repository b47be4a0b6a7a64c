"""Build the compact code-set files shipped in ``coding/data/`` (re-runnable).

Usage::

    python -m coding.build_data [--shared ../shared] [--only icd10cm|hcpcs]

ICD-10-CM comes from the PyPI package ``simple-icd-10-cm`` (MIT licence; its data is the
CDC/NCHS ICD-10-CM tabular list, April 1 2026 release, FY2026). Importing that package
costs about 1.5 s and 190 MB, so this script walks its tree once and writes what the
server needs: every code, its description, the billable (leaf) flag, the block and
chapter structure, the Excludes1 notes with the code ranges they name, and the
"use additional code" / "code first" notes.

HCPCS Level II comes from the CMS alpha-numeric file for the October 2025 quarter as a
CSV (``codesets/hcpcs/HCPC2025_OCT_ANWEB.csv`` under the shared folder; layout in its
README). Both sources are public domain or MIT; the provenance is written into each
file's metadata and into ``coding/data/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coding.datafiles import (
    DATA_DIR,
    HCPCS_FILE,
    ICD_DESCRIPTIONS_FILE,
    ICD_FILE,
    ICD_NOTES_FILE,
    SECTION_MARK,
)

ICD_META: dict[str, Any] = {
    "code_set": "ICD-10-CM",
    "fiscal_year": 2026,
    "effective_from": "2025-10-01",
    "effective_to": "2026-09-30",
    "release": "April 1, 2026 (FY2026 with the April update)",
    "source": "CDC/NCHS ICD-10-CM tabular list, via PyPI simple-icd-10-cm 1.5.0 (MIT licence)",
    "source_files": ["icd10c-tabular-April-1-2026.xml", "code-list-April-2026.txt"],
}
HCPCS_META: dict[str, Any] = {
    "code_set": "HCPCS Level II",
    "quarter": "2025-10",
    "effective_from": "2025-10-01",
    "source": "CMS alpha-numeric HCPCS file, October 2025 (HCPC2025_OCT_ANWEB), as CSV from the "
    "public repository rpatole24/medical-codex-pipeline; public domain (US government work)",
}

# Sex restrictions derived from the tabular list itself: a block or category whose
# title names female or male genital/pelvic organs. The scrubber also applies the
# maternity (chapter 15) and perinatal (chapter 16) rules, which need no derivation.
_FEMALE_TITLE = re.compile(r"\bfemale (genital|pelvic)", re.IGNORECASE)
_MALE_TITLE = re.compile(r"(?<![Ff]e)\bmale genital", re.IGNORECASE)

# A code reference inside an Excludes1 note: "K52.9", "K52.0-", "O98.-", "A00-B99".
_REF = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?\.?-?"
_REF_TOKEN = re.compile(rf"^({_REF})(?:\s*-\s*({_REF}))?$")
_PARENS = re.compile(r"\(([^()]*)\)")


def _dotless(ref: str) -> str:
    return ref.replace(".", "").rstrip("-")


def excludes1_ranges(note: str) -> list[tuple[str, str]]:
    """The code ranges an Excludes1 note names, as dotless (low, high) prefixes.

    Only plain references are taken: "(K52.9)", "(K52.0-)", "(A00-B99)", lists of those.
    Qualified ones ("I69. with final characters -23") are skipped on purpose: a
    scrubber edit must not fire on a guess.
    """
    ranges: list[tuple[str, str]] = []
    for group in _PARENS.findall(note):
        for token in re.split(r",\s*", group.strip()):
            m = _REF_TOKEN.match(token.strip())
            if not m:
                continue
            low = _dotless(m.group(1))
            high = _dotless(m.group(2)) if m.group(2) else low
            if low and high:
                ranges.append((low, high))
    return ranges


def _node_key(node: Any) -> str:
    """Blocks are '@'-prefixed and chapters '#'-prefixed, so block B20 never meets code B20."""
    if node.type == "chapter":
        return "#" + node.name
    if node.type == "section":
        return "@" + node.name
    return node.name.replace(".", "")


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _chapter_range(description: str) -> tuple[str, str]:
    m = re.search(r"\(([A-Z0-9]{3})-([A-Z0-9]{3})\)\s*$", description)
    if not m:
        raise ValueError(f"chapter title without a code range: {description!r}")
    return m.group(1), m.group(2)


def build_icd10cm(out_dir: Path) -> dict[str, Any]:
    """Write the ICD-10-CM code file and its notes file; return counts for the log."""
    from simple_icd_10_cm import simple_icd_10_cm as source  # 190 MB: only at build time

    codes: list[str] = []
    leaf_flags: list[str] = []
    descriptions: list[str] = []
    chapters: list[str] = []
    blocks: list[str] = []
    notes: list[str] = []
    restrictions: list[dict[str, str]] = []
    seen: set[str] = set()

    for chapter in source._chapter_list:
        low, high = _chapter_range(chapter.description)
        chapters.append(f"{chapter.name}\t{low}\t{high}\t{chapter.description}")
        for node in _walk(chapter):
            key = _node_key(node)
            if node.type == "section":
                blocks.append(f"{node.name}\t{chapter.name}\t{node.description}")
            elif node.type != "chapter":
                if key in seen:
                    raise ValueError(f"duplicate ICD-10-CM code in the source tree: {node.name}")
                seen.add(key)
                codes.append(key)
                leaf_flags.append("0" if node.children else "1")
                descriptions.append(node.description)
            if node.type in ("section", "category"):
                sex = "F" if _FEMALE_TITLE.search(node.description) else None
                sex = sex or ("M" if _MALE_TITLE.search(node.description) else None)
                if sex:
                    first, _, last = node.name.partition("-")
                    restrictions.append(
                        {"low": first, "high": last or first, "sex": sex, "title": node.description}
                    )
            for text in node.excludes1:
                clean = " ".join(text.split())
                for low_ref, high_ref in excludes1_ranges(clean):
                    notes.append(f"{key}\tE\t{low_ref}\t{high_ref}\t{clean}")
            if node.use_additional_code:
                notes.append(f"{key}\tU\t\t\t{' | '.join(node.use_additional_code.split(chr(10)))}")
            if node.code_first:
                notes.append(f"{key}\tF\t\t\t{' | '.join(node.code_first.split(chr(10)))}")

    for text in descriptions:
        if "\n" in text:
            raise ValueError("a description contains a line break or the section mark")
    meta = dict(ICD_META, codes=len(codes), billable=leaf_flags.count("1"), sex_restrictions=restrictions)
    # The core file holds only what validation needs, so it loads in a few milliseconds;
    # descriptions (most of the bytes) sit in their own file, read on first display.
    body = SECTION_MARK.join(
        [
            "meta\n" + json.dumps(meta, sort_keys=True),
            "billable\n" + "\n".join(c for c, f in zip(codes, leaf_flags, strict=True) if f == "1"),
            "headers\n" + "\n".join(c for c, f in zip(codes, leaf_flags, strict=True) if f == "0"),
            "chapters\n" + "\n".join(chapters),
            "blocks\n" + "\n".join(blocks),
        ]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_gzip(out_dir / ICD_FILE, body)
    # Tabular order; the description is the last field, so the 518 descriptions that
    # contain a tab survive a split("\t", 1).
    described = "\n".join(f"{c}\t{d}" for c, d in zip(codes, descriptions, strict=True))
    _write_gzip(
        out_dir / ICD_DESCRIPTIONS_FILE, "#" + json.dumps(ICD_META, sort_keys=True) + "\n" + described
    )
    notes_meta = json.dumps(dict(ICD_META, notes=len(notes)), sort_keys=True)
    _write_gzip(out_dir / ICD_NOTES_FILE, "#" + notes_meta + "\n" + "\n".join(notes))
    return {
        "codes": len(codes),
        "billable": leaf_flags.count("1"),
        "blocks": len(blocks),
        "notes": len(notes),
    }


def _hcpcs_add_date(raw: str) -> str:
    """The add date (YYYYMMDD) from the CSV's squeezed trailing columns.

    Code records end with "<pricing-ind>      0<add date 8><action date...>", modifier
    records with "<add date 8><action date...>" (see codesets/README.md).
    """
    digits = raw.strip()
    if len(raw) == 20:
        candidate = raw[8:16]
    elif len(digits) == 12:
        candidate = digits[:8]
    else:
        return ""
    return candidate if candidate.isdigit() else ""


def build_hcpcs(shared: Path, out_dir: Path) -> dict[str, Any]:
    """Write the HCPCS Level II codes and modifiers from the October 2025 CSV."""
    source = shared / "codesets" / "hcpcs" / "HCPC2025_OCT_ANWEB.csv"
    records: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    with source.open(encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            key = row["Code"].strip()
            record_id = key[-1:]
            code = key[:-6] if len(key) >= 8 else ""
            if record_id not in "3478" or not code:
                continue
            text = " ".join((row["Description1"] or "").split())
            if record_id in "37":
                records[code] = {
                    "kind": "C" if record_id == "3" else "M",
                    "short": " ".join((row["Description2"] or "")[:28].split()),
                    "long": [text],
                    "added": _hcpcs_add_date(row.get("Unknown4") or ""),
                }
                order.append(code)
            elif code in records:
                records[code]["long"].append(text)
    lines = [
        "\t".join((code, r["kind"], r["added"], "", r["short"], " ".join(r["long"]).strip()))
        for code, r in ((c, records[c]) for c in order)
    ]
    counts = {"codes": sum(r["kind"] == "C" for r in records.values())}
    counts["modifiers"] = len(records) - counts["codes"]
    meta = json.dumps(dict(HCPCS_META, **counts), sort_keys=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_gzip(out_dir / HCPCS_FILE, "#" + meta + "\n" + "\n".join(lines))
    return counts


def _write_gzip(path: Path, text: str) -> None:
    # mtime=0 keeps the output byte-identical between runs, so a rebuild shows no diff.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument("--only", choices=("icd10cm", "hcpcs"))
    args = parser.parse_args(argv)
    if args.only in (None, "icd10cm"):
        print("ICD-10-CM:", build_icd10cm(args.out))
    if args.only in (None, "hcpcs"):
        print("HCPCS:", build_hcpcs(args.shared, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
