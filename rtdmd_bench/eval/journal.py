"""Crash-safe sample records: per-rank append-only journals merged into ``samples.jsonl``.

Each rank appends one complete JSON line per finished image (write + flush + fsync) to
``journal/rank-R.jsonl``. A SIGKILL can leave at most one truncated final line, which readers drop and
writers cut off before appending. The final ``samples.jsonl`` is the merge of every journal and of any
previous ``samples.jsonl`` (later records for the same (suite, prompt_id, sample_idx) extend earlier ones),
written atomically and sorted, so it never holds duplicate lines whatever the number of interruptions,
resumes or world sizes involved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Key = tuple[str, int, int]


def record_key(rec: dict[str, Any]) -> Key:
    return (rec["suite"], int(rec["prompt_id"]), int(rec["sample_idx"]))


def read_jsonl(path: Path, strict: bool = False) -> Iterator[dict[str, Any]]:
    """Yield objects from a JSONL file. A truncated LAST line (crash mid-write) is skipped; a bad line
    elsewhere raises ValueError naming the file and line (or is skipped when ``strict`` is False and it is
    the last line)."""
    if not path.is_file():
        return
    lines = path.read_bytes().split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            if i == len(lines) and not strict:  # unterminated final line: interrupted write
                return
            raise ValueError(f"{path}:{i}: corrupt JSON line ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{i}: not a JSON object (one record per line expected)")
        yield obj


PER_REWARD_FIELDS = ("scores", "valid", "parts", "extras")


def merge_records(records: Iterable[dict[str, Any]], into: dict[Key, dict[str, Any]] | None = None
                  ) -> dict[Key, dict[str, Any]]:
    """Merge records by key: scalar fields from the latest, per-reward dicts (scores/valid/parts/extras) unioned;
    a record with a different ``image_sha256`` (a regenerated image) replaces the older one.

    Takes ownership of ``records`` (freshly parsed objects: they are stored, not copied) and of ``into`` (the
    result of an earlier merge, extended in place and returned). Linear in the number of records.
    """
    merged: dict[Key, dict[str, Any]] = {} if into is None else into
    for rec in records:
        key = record_key(rec)
        old = merged.get(key)
        if old is None or old.get("image_sha256") != rec.get("image_sha256"):
            merged[key] = rec
            continue
        for k, v in rec.items():
            old[k] = {**old.get(k, {}), **v} if k in PER_REWARD_FIELDS else v
    return merged


class Journal:
    """Append-only, fsynced JSONL writer for one rank."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fh = open(self.path, "ab")

    def _repair(self) -> None:
        """Cut a truncated final line left by a crash so the next append starts on a fresh line (reads only
        the file's tail)."""
        if not self.path.is_file():
            return
        with open(self.path, "r+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos, keep = end, 0
            while pos > 0:
                step = min(1 << 16, pos)
                fh.seek(pos - step)
                block = fh.read(step)
                if pos == end and block.endswith(b"\n"):
                    return
                nl = block.rfind(b"\n")
                if nl >= 0:
                    keep = pos - step + nl + 1
                    break
                pos -= step
            fh.truncate(keep)

    def append(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, sort_keys=True, allow_nan=False).encode() + b"\n"
        self._fh.write(line)  # one write per line: never interleaved with another record
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def journal_paths(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "journal").glob("rank-*.jsonl"))


def load_all(run_dir: Path) -> dict[Key, dict[str, Any]]:
    """Every record known for ``run_dir``: samples.jsonl first, then all rank journals."""
    sources = [run_dir / "samples.jsonl"] + journal_paths(run_dir)
    return merge_records(rec for src in sources for rec in read_jsonl(src))


def write_samples(run_dir: Path, merged: dict[Key, dict[str, Any]]) -> Path:
    """Atomically write the sorted, de-duplicated ``samples.jsonl``; then drop the merged journals."""
    from rtdmd_bench.io import atomic_write_text

    lines = [json.dumps(merged[k], sort_keys=True, allow_nan=False) for k in sorted(merged)]
    path = run_dir / "samples.jsonl"
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    for journal in journal_paths(run_dir):
        journal.unlink()
    return path
