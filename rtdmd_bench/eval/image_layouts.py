"""Folders of images made elsewhere, matched to a suite's prompts before anything is scored (``rtdmd-bench score``).

Layouts (``detect_layout`` picks one when not given):

* ``geneval``: GenEval's official generation output, ``<index>/metadata.jsonl`` (the prompt's metadata line) and
  ``<index>/samples/<n>.png`` (``grid.png`` ignored). Each folder is matched by its metadata (prompt text, tag,
  include/exclude), not by its index, so a prompt file in another order still lines up.
* ``harness``: this harness's own ``images/<suite>/<prompt_id>_<sample_idx>.png`` (a run dir, its ``images/`` or
  ``images/<suite>/``); a ``samples.jsonl`` beside it is checked against the suite's prompt texts.
* ``flat``: a flat folder plus a mapping file (``--mapping``; CSV with a header, or JSONL) whose rows name the image
  (``file``/``image``/``path``, relative to the folder) and its ``prompt`` (or ``prompt_id``), optionally
  ``sample_idx``; without a mapping, file names ``<prompt>_<n>.png`` (T2I-CompBench's convention) are matched to
  the prompt texts.

Every file that does not line up is a mismatch; ``match_images`` raises one ``ImageFolderError`` with the count and
the first mismatches, before any scorer loads. No path may leave the images folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
LAYOUTS = ("geneval", "harness", "flat")
MAX_SHOWN = 8
_HARNESS_NAME = re.compile(r"^(\d+)_(\d+)$")
_NAMED = re.compile(r"^(?P<prompt>.+)_(?P<n>\d+)$")


class ImageFolderError(ValueError):
    """The images do not match the suite (or the folder is unusable); the message gives counts and examples."""


@dataclass(frozen=True)
class FoundImage:
    """One image of the folder lined up with a suite prompt; ``source`` is its path relative to the folder."""

    prompt_id: int
    sample_idx: int
    path: Path
    source: str


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _inside(root: Path, rel: str, where: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ImageFolderError(f"{where}: {rel!r} points outside the images folder {root}")
    return path


def _index_int(name: str) -> int | None:
    return int(name) if name.isdigit() else None


def detect_layout(root: Path, suite: str, mapping: Path | None) -> str:
    """``flat`` with a mapping file; ``geneval`` when numbered folders hold ``metadata.jsonl``; ``harness`` for a
    run dir / ``images/`` / ``images/<suite>/``; else ``flat`` (prompt-named files)."""
    if mapping is not None:
        return "flat"
    if any((d / "metadata.jsonl").is_file() for d in root.iterdir() if d.is_dir() and d.name.isdigit()):
        return "geneval"
    if harness_dir(root, suite) is not None:
        return "harness"
    return "flat"


def harness_dir(root: Path, suite: str) -> Path | None:
    """The folder holding ``<prompt_id>_<sample_idx>.png`` of ``suite`` under a harness run dir, or None."""
    for cand in (root / "images" / suite, root / suite, root):
        if cand.is_dir() and any(_HARNESS_NAME.match(p.stem) and p.suffix in IMAGE_SUFFIXES for p in cand.iterdir()):
            return cand
    return None


def _canonical(meta: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in meta.items()}, sort_keys=True)


def geneval_images(root: Path, prompts: Sequence[Any]) -> tuple[list[FoundImage], list[str]]:
    """GenEval's ``<index>/metadata.jsonl`` + ``<index>/samples/<n>.png``, matched by metadata content."""
    by_meta: dict[str, list[int]] = {}
    by_text: dict[str, list[int]] = {}
    for p in prompts:
        by_meta.setdefault(_canonical({"prompt": p.prompt, **dict(p.metadata)}), []).append(p.prompt_id)
        by_text.setdefault(p.prompt, []).append(p.prompt_id)
    found, bad, used = [], [], set()
    for d in sorted(x for x in root.iterdir() if x.is_dir()):
        meta_file = d / "metadata.jsonl"
        if not meta_file.is_file():
            bad.append(f"{d.name}/: no metadata.jsonl")
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8").strip().splitlines()[0])
        except (json.JSONDecodeError, IndexError, UnicodeDecodeError):
            bad.append(f"{d.name}/metadata.jsonl: not a JSON object line")
            continue
        cands = by_meta.get(_canonical(meta)) or by_text.get(str(meta.get("prompt", "")).strip(), [])
        free = [c for c in cands if c not in used]
        if not free:
            bad.append(f"{d.name}/metadata.jsonl: prompt {meta.get('prompt')!r} is not in the suite"
                       + (" (or appears more often than in the suite)" if cands else ""))
            continue
        index = _index_int(d.name)
        pid = index if index in free else free[0]
        used.add(pid)
        samples = sorted(p for p in (d / "samples").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) \
            if (d / "samples").is_dir() else []
        if not samples:
            bad.append(f"{d.name}/samples/: no images")
        for k, img in enumerate(samples):
            n = _index_int(img.stem)
            found.append(FoundImage(pid, k if n is None else n, img, _rel(root, img)))
    return found, bad


def harness_images(root: Path, suite: str, prompts: Sequence[Any]) -> tuple[list[FoundImage], list[str]]:
    """``<prompt_id>_<sample_idx>.png`` files; prompt ids must exist, and a ``samples.jsonl`` of the run (if any)
    must name the same prompt texts."""
    folder = harness_dir(root, suite)
    if folder is None:
        raise ImageFolderError(f"{root}: no images/{suite}/<prompt_id>_<sample_idx>.png files (harness layout)")
    texts = {p.prompt_id: p.prompt for p in prompts}
    recorded: dict[tuple[int, int], str] = {}
    run_dir = folder.parent.parent if folder.parent.name == "images" else None
    if run_dir is not None and (run_dir / "samples.jsonl").is_file():
        for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line) if line.strip() else {}
            if rec.get("suite") == suite:
                recorded[(int(rec["prompt_id"]), int(rec["sample_idx"]))] = rec.get("prompt", "")
    found, bad = [], []
    for img in sorted(folder.iterdir()):
        m = _HARNESS_NAME.match(img.stem)
        if not img.is_file() or img.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if m is None:
            bad.append(f"{_rel(root, img)}: name is not <prompt_id>_<sample_idx>")
            continue
        pid, k = int(m[1]), int(m[2])
        if pid not in texts:
            bad.append(f"{_rel(root, img)}: prompt id {pid} is not in the suite ({len(texts)} prompts)")
        elif (pid, k) in recorded and recorded[(pid, k)] != texts[pid]:
            bad.append(f"{_rel(root, img)}: samples.jsonl says prompt {recorded[(pid, k)]!r}, the suite "
                       f"{texts[pid]!r}")
        else:
            found.append(FoundImage(pid, k, img, _rel(root, img)))
    return found, bad


def _mapping_rows(mapping: Path) -> list[dict[str, Any]]:
    text = mapping.read_text(encoding="utf-8")
    if mapping.suffix == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ImageFolderError(f"{mapping}:{i}: invalid JSON ({exc.msg})") from None
        return rows
    if mapping.suffix in (".csv", ".tsv"):
        return list(csv.DictReader(io.StringIO(text), delimiter="\t" if mapping.suffix == ".tsv" else ","))
    raise ImageFolderError(f"{mapping}: mapping file must be .csv, .tsv or .jsonl")


def mapped_images(root: Path, mapping: Path | None, prompts: Sequence[Any]) -> tuple[list[FoundImage], list[str]]:
    """A flat folder: rows of a mapping file, or ``<prompt>_<n>`` file names, lined up by prompt text (or id)."""
    by_text: dict[str, int] = {}
    for p in prompts:
        by_text.setdefault(p.prompt.strip(), p.prompt_id)
    texts = {p.prompt_id: p.prompt for p in prompts}
    rows: list[tuple[str, dict[str, Any]]] = []
    if mapping is not None:
        for i, row in enumerate(_mapping_rows(mapping), 1):
            rel = next((str(row[k]) for k in ("file", "image", "path") if row.get(k)), None)
            rows.append((rel or "", {**row, "_where": f"{mapping.name}:{i}"}))
    else:
        for img in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            m = _NAMED.match(img.stem)
            rows.append((img.name, {"prompt": m["prompt"] if m else img.stem, "sample_idx": m["n"] if m else None,
                                    "_where": img.name}))
    found, bad, count = [], [], {}
    for rel, row in rows:
        where = row["_where"]
        if not rel:
            bad.append(f"{where}: no file/image/path column")
            continue
        path = _inside(root, rel, where)
        if not path.is_file():
            bad.append(f"{where}: image {rel} not found")
            continue
        pid = row.get("prompt_id")
        pid = int(pid) if pid not in (None, "") else by_text.get(str(row.get("prompt", "")).strip())
        if pid is None or pid not in texts:
            bad.append(f"{where}: prompt {row.get('prompt')!r} is not in the suite")
            continue
        if row.get("prompt") and str(row["prompt"]).strip() != texts[pid].strip():
            bad.append(f"{where}: prompt_id {pid} is {texts[pid]!r} in the suite, not {row['prompt']!r}")
            continue
        k = row.get("sample_idx")
        k = int(k) if k not in (None, "") else count.get(pid, 0)
        count[pid] = max(count.get(pid, 0), k + 1)
        found.append(FoundImage(pid, k, path, _rel(root.resolve(), path)))
    return found, bad


def match_images(root: Path, suite: str, prompts: Sequence[Any], layout: str = "auto",
                 mapping: Path | None = None) -> tuple[str, list[FoundImage]]:
    """``(layout used, images lined up with prompts)``, sorted by ``(prompt_id, sample_idx)``.

    Raises:
        ImageFolderError: no images, files that match no prompt, or two files for one (prompt, sample).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a folder of images")
    if mapping is not None and not Path(mapping).is_file():
        raise ImageFolderError(f"--mapping {mapping}: file not found")
    layout = detect_layout(root, suite, mapping) if layout == "auto" else layout
    if layout == "geneval":
        found, bad = geneval_images(root, prompts)
    elif layout == "harness":
        found, bad = harness_images(root, suite, prompts)
    elif layout == "flat":
        found, bad = mapped_images(root, Path(mapping) if mapping else None, prompts)
    else:
        raise ImageFolderError(f"unknown layout {layout!r}; choose one of auto, {', '.join(LAYOUTS)}")
    seen: dict[tuple[int, int], str] = {}
    for f in found:
        key = (f.prompt_id, f.sample_idx)
        if key in seen:
            bad.append(f"{f.source}: same prompt {f.prompt_id} and sample {f.sample_idx} as {seen[key]}")
        seen[key] = f.source
    if bad or not found:
        total = len(found) + len(bad)
        shown = "; ".join(bad[:MAX_SHOWN]) + (f"; ... ({len(bad) - MAX_SHOWN} more)" if len(bad) > MAX_SHOWN else "")
        raise ImageFolderError(f"{root} ({layout} layout) does not match suite {suite!r}: {len(bad)} of {total} "
                               f"entries do not line up with its {len(prompts)} prompts"
                               + (f": {shown}" if bad else ": no images found"))
    return layout, sorted(found, key=lambda f: (f.prompt_id, f.sample_idx))
