"""Reading run directories (``results.json`` + ``samples.jsonl`` + images) for the report commands.

Every problem with the files becomes a ``RunError`` whose message names the file and, for
``samples.jsonl``, the line, so a user can fix or re-run the right thing. Missing images are not
errors: they are listed on ``Run.missing_images`` and shown by the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtdmd_bench.eval.schema import SCHEMA_VERSION, validate_results, validate_sample

MAX_LISTED_PROBLEMS = 8


class RunError(ValueError):
    """A run directory or file that cannot be used (the message says which file, which line, why)."""


@dataclass
class Run:
    """One evaluation run as read from disk.

    Attributes:
        path: the run directory.
        label: short stable name (the directory name) used in tables and JSON.
        results: parsed ``results.json``.
        samples: parsed ``samples.jsonl`` lines (empty when not loaded).
        missing_images: image paths (relative to ``path``) named by samples but absent on disk.
    """

    path: Path
    label: str
    results: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)

    @property
    def model(self) -> dict[str, Any]:
        return self.results.get("model") or {}

    @property
    def model_name(self) -> str:
        return str(self.model.get("name") or self.label)

    @property
    def tiny(self) -> bool:
        return bool(self.results.get("tiny_weights")) or bool(self.model.get("tiny"))

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        """``"suite/reward"`` -> aggregate entry."""
        return self.results.get("results") or {}

    @property
    def seed(self) -> Any:
        return (self.results.get("run") or {}).get("seed")

    @property
    def resolution(self) -> tuple[Any, Any]:
        return self.model.get("height"), self.model.get("width")

    @property
    def trained_on(self) -> dict[str, dict[str, Any]]:
        """Suite name -> overlap record, for suites whose prompts the model was trained on (results.json
        ``suites[...].trained_on_prompts``, ``eval.contamination``)."""
        return {str(v.get("name")): v["trained_on_prompts"] for v in (self.results.get("suites") or {}).values()
                if isinstance(v, dict) and v.get("trained_on_prompts")}

    @property
    def training_rewards(self) -> list[str]:
        return [str(r) for r in (self.model.get("training_rewards") or [])]

    def image_path(self, sample: dict[str, Any]) -> Path:
        return self.path / sample["image"]


def sample_key(sample: dict[str, Any]) -> tuple[str, int, int]:
    """The identity of one image across runs: (suite, prompt_id, sample_idx)."""
    return (sample["suite"], sample["prompt_id"], sample["sample_idx"])


def valid_score(sample: dict[str, Any], reward: str) -> float | None:
    """The sample's score for ``reward``, or None when missing, flagged invalid or not finite."""
    value = (sample.get("scores") or {}).get(reward)
    if value is None or not (sample.get("valid") or {}).get(reward, False):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def resolve_run_dir(path: str | Path) -> tuple[Path, Path]:
    """(run directory, results.json path) for a run directory or a results.json file."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such run directory or results.json file")
    if path.is_dir():
        return path, path / "results.json"
    if path.suffix == ".json":
        return path.parent, path
    raise RunError(f"{path}: not a run directory or a results.json file")


def load_run(path: str | Path, *, samples: bool = True, check_images: bool = True) -> Run:
    """Load and validate a run.

    Args:
        path: run directory, or a ``results.json`` file (its directory is the run directory).
        samples: also read ``samples.jsonl`` (required to be present and non-empty).
        check_images: record images named in ``samples.jsonl`` that are absent on disk.

    Returns:
        The ``Run``.

    Raises:
        RunError: missing/corrupt/truncated files, a different schema version, an empty run.
    """
    run_dir, results_path = resolve_run_dir(path)
    results = read_results(results_path)
    run = Run(path=run_dir, label=run_dir.name or str(run_dir), results=results)
    if samples:
        run.samples = read_samples(run_dir / "samples.jsonl", results)
        if check_images:
            run.missing_images = sorted({s["image"] for s in run.samples if not run.image_path(s).is_file()})
    return run


def read_results(path: Path) -> dict[str, Any]:
    """Parse and validate ``results.json`` (see ``rtdmd_bench.eval.schema``)."""
    if not path.is_file():
        raise RunError(f"{path}: file not found (a run directory holds results.json and samples.jsonl)")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise RunError(f"{path}: empty file (was the run killed before it finished?)")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) or not text.rstrip().endswith("}")
        hint = " - the file ends early (truncated; was the run killed while writing it?)" if truncated else ""
        raise RunError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{hint}") from None
    _check_schema_version(obj, path)
    problems = validate_results(obj)
    if problems:
        raise RunError(f"{path}: does not match results schema {SCHEMA_VERSION}:\n  " + _listing(problems))
    if not obj["results"]:
        raise RunError(f"{path}: empty run - 'results' has no suite/reward entries")
    return obj


def _check_schema_version(obj: Any, path: Path) -> None:
    if not isinstance(obj, dict):
        raise RunError(f"{path}: top level must be a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if version != SCHEMA_VERSION:
        from rtdmd_bench import __version__

        writer = obj.get("package_version", "an unknown version")
        raise RunError(
            f"{path}: schema_version {version!r} (written by rtdmd-bench {writer}), but this rtdmd-bench "
            f"({__version__}) reads schema_version {SCHEMA_VERSION}; re-run the evaluation with this version "
            "or use the rtdmd-bench that wrote it"
        )


def read_samples(path: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse and validate ``samples.jsonl``; errors name the 1-based line."""
    if not path.is_file():
        raise RunError(f"{path}: file not found (needed for per-prompt statistics)")
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n") if raw else []
    ends_with_newline = raw.endswith("\n")
    if ends_with_newline:
        lines.pop()
    suites = set(results.get("suites") or {})
    samples: list[dict[str, Any]] = []
    seen: dict[tuple[str, int, int], int] = {}
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        if not line.strip():
            raise RunError(f"{path}: line {number} is empty (one JSON object per line expected)")
        sample = _parse_sample_line(path, number, line, truncated=is_last and not ends_with_newline)
        _check_sample(path, number, sample, suites, seen)
        samples.append(sample)
    if not samples:
        raise RunError(f"{path}: empty run - no samples (did generation produce any image?)")
    return samples


def _parse_sample_line(path: Path, number: int, line: str, truncated: bool) -> dict[str, Any]:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        if truncated:
            raise RunError(
                f"{path}: line {number} is truncated (no newline at the end of the file; the writer was "
                "probably killed mid-line) - re-run the evaluation to resume, or delete that line"
            ) from None
        raise RunError(f"{path}: line {number}: invalid JSON at column {exc.colno}: {exc.msg}") from None


def _check_sample(path: Path, number: int, sample: Any, suites: set[str],
                  seen: dict[tuple[str, int, int], int]) -> None:
    problems = validate_sample(sample)
    if problems:
        raise RunError(f"{path}: line {number}: " + "; ".join(problems[:MAX_LISTED_PROBLEMS]))
    suite_key = f"{sample['suite']}@{sample['suite_version']}"
    if suite_key not in suites:
        raise RunError(f"{path}: line {number}: suite {suite_key} is not listed in results.json suites "
                       f"({', '.join(sorted(suites)) or 'none'})")
    key = sample_key(sample)
    if key in seen:
        raise RunError(f"{path}: line {number} repeats (suite, prompt_id, sample_idx) = {key} of line {seen[key]}")
    seen[key] = number


def _listing(problems: list[str]) -> str:
    shown = problems[:MAX_LISTED_PROBLEMS]
    more = len(problems) - len(shown)
    return "\n  ".join(shown + ([f"... and {more} more"] if more else []))
