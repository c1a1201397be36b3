"""Prompt-file loaders for the canonical formats; a malformed file is an error with file and line number."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SuiteFormatError(ValueError):
    """Malformed prompt file (the message names the file and the line)."""


class SuiteChecksumError(ValueError):
    """Prompt file whose sha256 or prompt count differs from its manifest."""


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of a suite: ``prompt_id`` is its 0-based index in the file."""

    prompt_id: int
    prompt: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tag: str | None = None


def _fail(path: Path, line: int, msg: str) -> SuiteFormatError:
    return SuiteFormatError(f"{path}:{line}: {msg}")


def parse_txt(text: str, path: Path) -> list[dict[str, Any]]:
    """One prompt per line; blank lines are skipped, surrounding whitespace stripped."""
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if "\x00" in line:
            raise _fail(path, i, "NUL byte in a text prompt file (binary file?)")
        if line.strip():
            rows.append({"prompt": line.strip()})
    return rows


def parse_jsonl(text: str, path: Path, require: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """JSON object per line with a non-empty string ``prompt`` (or ``text``) and the ``require`` keys."""
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, i, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise _fail(path, i, f"expected a JSON object, got {type(obj).__name__}")
        prompt = obj.get("prompt", obj.get("text"))
        if not isinstance(prompt, str) or not prompt.strip():
            raise _fail(path, i, "missing a non-empty string 'prompt'")
        missing = [k for k in require if k not in obj]
        if missing:
            raise _fail(path, i, f"missing required field(s) {missing}")
        rows.append({**obj, "prompt": prompt.strip()})
    return rows


GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def parse_geneval(text: str, path: Path) -> list[dict[str, Any]]:
    """GenEval metadata JSONL: ``tag``, ``include`` [{class, count, color?, position?}], ``exclude``?, ``prompt``."""
    rows = parse_jsonl(text, path, require=("tag", "include"))
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    for row, line in zip(rows, lines):
        if row["tag"] not in GENEVAL_TAGS:
            raise _fail(path, line, f"unknown GenEval tag {row['tag']!r}; expected one of {GENEVAL_TAGS}")
        inc = row["include"]
        if not isinstance(inc, list) or not inc or not all(isinstance(c, dict) and "class" in c for c in inc):
            raise _fail(path, line, "'include' must be a non-empty list of {class, count, ...} objects")
        for clause in inc + list(row.get("exclude", [])):
            if not isinstance(clause.get("count", 1), int):
                raise _fail(path, line, f"'count' must be an integer in {clause}")
    return rows


GENEVAL2_SKILLS = ("object", "count", "attribute", "position", "verb")


def parse_geneval2(text: str, path: Path) -> list[dict[str, Any]]:
    """GenEval2 JSONL: ``prompt``, ``atom_count`` (int), ``vqa_list`` [[question, answer], ...] (non-empty) and
    ``skills`` (one of ``GENEVAL2_SKILLS`` per question)."""
    rows = parse_jsonl(text, path, require=("atom_count", "vqa_list", "skills"))
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    for row, line in zip(rows, lines):
        vqa, skills = row["vqa_list"], row["skills"]
        if not isinstance(row["atom_count"], int) or isinstance(row["atom_count"], bool):
            raise _fail(path, line, f"'atom_count' must be an integer, got {row['atom_count']!r}")
        if not isinstance(vqa, list) or not vqa or not all(
                isinstance(qa, list) and len(qa) == 2 and all(isinstance(x, str) and x for x in qa) for qa in vqa):
            raise _fail(path, line, "'vqa_list' must be a non-empty list of [question, answer] string pairs")
        if not isinstance(skills, list) or len(skills) != len(vqa):
            raise _fail(path, line, f"'skills' must list one skill per question ({len(vqa)})")
        unknown = sorted({s for s in skills if s not in GENEVAL2_SKILLS}, key=str)
        if unknown:
            raise _fail(path, line, f"unknown skill(s) {unknown}; expected {GENEVAL2_SKILLS}")
    return rows


def parse_table(text: str, path: Path, delimiter: str, column: str) -> list[dict[str, Any]]:
    """CSV/TSV with a header row containing ``column``; other columns become metadata."""
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if reader.fieldnames is None or column not in reader.fieldnames:
        raise _fail(path, 1, f"header must contain a {column!r} column, got {reader.fieldnames}")
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise _fail(path, line, f"more fields than the header has ({len(reader.fieldnames)})")
        if any(v is None for v in row.values()):
            raise _fail(path, line, f"fewer fields than the header has ({len(reader.fieldnames)})")
        prompt = (row.pop(column) or "").strip()
        if not prompt:
            raise _fail(path, line, f"empty {column!r}")
        rows.append({**row, "prompt": prompt})
    return rows


def parse_file(path: Path, fmt: str, prompt_column: str = "prompt") -> list[dict[str, Any]]:
    """Parse ``path`` in format ``fmt`` into row dicts with at least ``prompt``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if fmt == "txt":
        return parse_txt(text, path)
    if fmt == "jsonl":
        return parse_jsonl(text, path)
    if fmt == "geneval_jsonl":
        return parse_geneval(text, path)
    if fmt == "geneval2_jsonl":
        return parse_geneval2(text, path)
    if fmt in ("csv", "tsv"):
        return parse_table(text, path, "," if fmt == "csv" else "\t", prompt_column)
    raise SuiteFormatError(f"{path}: unknown format {fmt!r}")


def to_records(rows: list[dict[str, Any]], tag_field: str | None) -> list[PromptRecord]:
    return [
        PromptRecord(prompt_id=i, prompt=r["prompt"], metadata={k: v for k, v in r.items() if k != "prompt"},
                     tag=str(r[tag_field]) if tag_field and tag_field in r else None)
        for i, r in enumerate(rows)
    ]


def load_prompts(spec, verify: bool = True) -> list[PromptRecord]:
    """Load a suite's prompts (``spec``: SuiteSpec), checking sha256 and count against the manifest."""
    from rtdmd_bench.io import sha256_file

    path = spec.installed_path()
    if path is None:
        how = f"rtdmd-bench prompts import {spec.name} FILE" + (
            f"  (or `rtdmd-bench prompts fetch {spec.name}` with network access)" if spec.fetch_url else "")
        raise FileNotFoundError(f"suite {spec.name!r} is not installed (expected {spec.data_path()}). Run: {how}")
    sha, n = spec.expected()  # the manifest's, or what the first import recorded
    said = "manifest says" if spec.sha256 else "its first import recorded"
    if verify and sha:
        digest = sha256_file(path)
        if digest != sha:
            raise SuiteChecksumError(
                f"suite {spec.id}: {path} has sha256 {digest}, {said} {sha}. The file was changed "
                f"or is a different version; re-import the canonical file or bump the suite version.")
    records = to_records(parse_file(path, spec.format, spec.prompt_column), spec.tag_field)
    if verify and n and len(records) != n:
        raise SuiteChecksumError(f"suite {spec.id}: {path} has {len(records)} prompts, {said} {n}")
    return records
