"""Suite manifests: ``prompts/<name>/suite.yaml`` -> ``SuiteSpec`` (torch-free).

Manifest keys: name, version, description, split (``train``: a training prompt set; ``test``: benchmark evaluation
prompts, which training refuses without ``--allow-test-prompts``), format (txt | jsonl | geneval_jsonl |
geneval2_jsonl | csv | tsv), file, location (``repo``: shipped beside the manifest; ``data``: installed into the user
data dir by ``prompts import``), sha256, n_prompts, images_per_prompt, metadata_fields, tag_field, default_rewards,
source, prompt_column (csv/tsv), fetch_url, fetch_dedupe, git_blob_sha1. Unknown keys are errors (strict config
loader).

A set whose canonical file was never available here has ``sha256: ""`` and ``n_prompts: 0`` and names its file by
``git_blob_sha1`` (the blob id in its source repository's tree, which ``prompts import`` verifies); the sha256 and
count seen on the first import are recorded beside the installed file (``PROVENANCE``) and verified on every load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rtdmd_bench.config import build, read_yaml
from rtdmd_bench.registry import Spec

PROVENANCE = "PROVENANCE.json"
FORMATS = ("txt", "jsonl", "geneval_jsonl", "geneval2_jsonl", "csv", "tsv")


@dataclass(frozen=True)
class SuiteSpec(Spec):
    """One prompt suite. ``target`` is the loader; ``manifest_dir`` is where suite.yaml lives."""

    version: str = "1"
    split: Literal["train", "test", ""] = ""  # required in a manifest (read_manifest)
    format: Literal["txt", "jsonl", "geneval_jsonl", "geneval2_jsonl", "csv", "tsv"] = "txt"
    file: str = ""
    location: Literal["repo", "data"] = "repo"
    sha256: str = ""
    n_prompts: int = 0
    images_per_prompt: int = 1
    metadata_fields: tuple[str, ...] = ()
    tag_field: str | None = None
    default_rewards: tuple[str, ...] = ()
    source: str = ""
    prompt_column: str = "prompt"
    fetch_url: str | None = None
    fetch_dedupe: bool = False
    git_blob_sha1: str = ""
    manifest_dir: str = ""

    @property
    def id(self) -> str:
        """``name@version``: the key of leaderboard columns and of image seeds."""
        return f"{self.name}@{self.version}"

    def summary(self) -> dict[str, str]:
        return {
            "version": self.version,
            "split": self.split,
            "prompts": str(self.n_prompts or "? (recorded on import)"),
            "imgs/prompt": str(self.images_per_prompt),
            "rewards": ",".join(self.default_rewards),
            "installed": "yes" if self.installed_path() else "no (prompts import)",
        }

    def data_path(self) -> Path:
        """Where ``prompts import`` installs a ``location: data`` suite."""
        return data_dir() / "prompts" / self.name / self.file

    def provenance_path(self) -> Path:
        """The record of the first import of a set without a manifest sha256 (``PROVENANCE`` beside the file)."""
        return self.data_path().with_name(PROVENANCE)

    def expected(self) -> tuple[str, int]:
        """``(sha256, n_prompts)`` to verify against: the manifest's, else those recorded on the first import
        (``("", 0)`` when neither exists)."""
        if self.sha256:
            return self.sha256, self.n_prompts
        import json

        try:
            rec = json.loads(self.provenance_path().read_text(encoding="utf-8"))
            return str(rec["sha256"]), int(rec["n_prompts"])
        except (OSError, ValueError, KeyError, TypeError):
            return "", self.n_prompts

    def installed_path(self) -> Path | None:
        """The prompt file if present (repo copy or installed copy), else None."""
        candidates = [Path(self.manifest_dir) / self.file, self.data_path()]
        return next((p for p in candidates if p.is_file()), None)


def data_dir() -> Path:
    """User data dir for imported prompt sets (``$RTDMD_BENCH_DATA`` or ``~/.local/share/rtdmd-bench``)."""
    env = os.environ.get("RTDMD_BENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "rtdmd-bench"


def prompts_dirs() -> list[Path]:
    """Directories scanned for ``*/suite.yaml``: the project's ``prompts/`` and ``$RTDMD_BENCH_PROMPTS``."""
    dirs = [Path(__file__).resolve().parents[2] / "prompts"]
    extra = os.environ.get("RTDMD_BENCH_PROMPTS")
    if extra:
        dirs += [Path(p).expanduser() for p in extra.split(os.pathsep) if p]
    return dirs


def read_manifest(path: Path) -> SuiteSpec:
    """Strict-load one suite.yaml (unknown keys and wrong types are errors naming the file)."""
    from rtdmd_bench.config import ConfigError

    data = read_yaml(path)
    data.setdefault("target", "rtdmd_bench.suites.loaders:load_prompts")
    data["manifest_dir"] = str(path.parent)
    try:
        spec = build(SuiteSpec, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if spec.name != path.parent.name:
        raise ConfigError(f"{path}: name {spec.name!r} must equal its folder name {path.parent.name!r}")
    if spec.split not in ("train", "test"):
        raise ConfigError(f"{path}: 'split' must be 'train' (a training prompt set) or 'test' (evaluation prompts)")
    return spec
