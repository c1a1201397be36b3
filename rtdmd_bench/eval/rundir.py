"""The run directory: config identity checks, cached-image verification, results.json assembly."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rtdmd_bench.config import to_dict
from rtdmd_bench.eval.config import IDENTITY_FIELDS, EvalConfig


class RunDirError(RuntimeError):
    """Unusable output directory (unwritable, or holding a different run)."""


def prepare(out: Path, cfg: EvalConfig, force: bool, is_main: bool) -> None:
    """Create ``out`` (checking it is writable) and refuse a dir that holds a different run unless ``force``."""
    import yaml

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"output directory {out} is not writable: {exc}") from exc
    saved = out / "config.yaml"
    if saved.is_file() and not force:
        old = yaml.safe_load(saved.read_text()) or {}
        new = to_dict(cfg)
        defaults = to_dict(EvalConfig())  # a key added after the run was made holds its default there
        diff = [k for k in IDENTITY_FIELDS if old.get(k, defaults[k]) != new.get(k)]
        if diff:
            details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise RunDirError(
                f"{out} holds a different run ({details}). Use another --out, or --force to reuse it "
                f"(cached images whose settings differ would be mixed in).")
    if is_main:
        from rtdmd_bench.config import save

        save(cfg, saved)


def image_ok(out: Path, rec: dict[str, Any] | None) -> bool:
    """True when the record's PNG exists and its sha256 matches (a corrupt or missing image is regenerated)."""
    from rtdmd_bench.io import sha256_file

    if not rec or not rec.get("image") or not rec.get("image_sha256"):
        return False
    path = out / rec["image"]
    return path.is_file() and sha256_file(path) == rec["image_sha256"]


def git_hash() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def hardware(device: str) -> dict[str, Any]:
    import torch

    info = {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
            "device": device, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def assemble(cfg: EvalConfig, plan, model_info: dict[str, Any], entries: dict[str, Any],
             run_stats: dict[str, Any], tiny: bool, reward_info: dict[str, dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """The full results.json object (schema in eval/schema.py). ``reward_info``: ``rewards.reward_identity``
    per reward (effective version/units, options, model files)."""
    from rtdmd_bench import __version__
    from rtdmd_bench.eval.contamination import trained_on
    from rtdmd_bench.eval.schema import SCHEMA_VERSION
    from rtdmd_bench.rewards import reward_spec

    overlap = trained_on({n: {it.prompt for it in plan.items if it.suite == n} for n in plan.suites}, model_info)
    for entry in entries.values():  # every number on prompts the model was trained on carries the flag
        if entry.get("suite") in overlap:
            entry["trained_on_prompts"] = True
    suites = {}
    for name, spec in plan.suites.items():
        used = plan.n_prompts_used[name]
        suites[spec.id] = {
            "name": spec.name, "version": spec.version, "sha256": spec.sha256, "n_prompts": spec.n_prompts,
            "n_prompts_used": used, "limit": cfg.limit,
            "images_per_prompt": cfg.samples_per_prompt or spec.images_per_prompt,
            "prompt_ids": f"first {used} prompts of the file (ids 0..{used - 1})", "source": spec.source,
            "split": spec.split, **({"trained_on_prompts": overlap[name]} if name in overlap else {}),
        }
    names = sorted({r for rs in plan.rewards.values() for r in rs})
    rewards = {n: {"version": s.version, "units": s.units, "higher_is_better": s.higher_is_better,
                   "differentiable": s.differentiable, **(reward_info or {}).get(n, {})}
               for n, s in ((n, reward_spec(n)) for n in names)}
    return {
        "schema_version": SCHEMA_VERSION, "package_version": __version__, "git_hash": git_hash(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tiny_weights": tiny,
        "config": to_dict(cfg), "model": model_info, "suites": suites, "rewards": rewards,
        "results": entries, "run": run_stats,
    }
