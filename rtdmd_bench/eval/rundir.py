"""The run directory: the writer lock, config identity checks, cached-image verification, results.json assembly."""

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
    """Unusable output directory (unwritable, held by another writer, or holding a different run)."""


LOCK_NAME = ".lock"


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``<out>/.lock`` (released by the OS when the holder
    exits, even on SIGKILL, so it never goes stale). The file names the holder for the refusal message.

    Creating the folder here is harmless: nothing in it can block a retry before ``prepare`` writes config.yaml.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunDirError naming the holder's pid (never waits)."""
        import fcntl
        import socket

        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunDirError(f"output directory {self.out} is not writable: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "pid unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.out} is being written by another rtdmd-bench process ({holder}); wait for it to finish "
                f"(the same command then resumes), or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holds_records(out: Path) -> bool:
    """True when the folder holds any journaled image (samples.jsonl or a rank journal with content)."""
    paths = [out / "samples.jsonl", *sorted((out / "journal").glob("rank-*.jsonl"))]
    return any(p.is_file() and p.stat().st_size > 0 for p in paths)


def prepare(out: Path, cfg: EvalConfig, force: bool, identity: tuple[str, ...] = IDENTITY_FIELDS) -> dict:
    """Rank 0, holding the lock: refuse a folder that holds images of a different run (a config that differs in an
    ``identity`` field) unless ``force``, write config.yaml, compact stale journals into samples.jsonl; returns every
    known record (read once).

    A config.yaml whose run never journaled an image (a failed or interrupted start) is provisional: it is
    replaced without ``--force``, so fixing a typo and re-running just works.
    """
    from rtdmd_bench.config import ConfigError, read_yaml, save
    from rtdmd_bench.eval.journal import load_all, write_samples

    saved = out / "config.yaml"
    if saved.is_file() and not force and holds_records(out):
        try:
            old = read_yaml(saved)
        except ConfigError as exc:
            raise RunDirError(f"{saved} is unreadable ({exc}); use another --out, or --force to reuse {out}") from None
        new = to_dict(cfg)
        defaults = to_dict(type(cfg)())  # a key added after the run was made holds its default there
        diff = [k for k in identity if old.get(k, defaults[k]) != new.get(k)]
        if diff:
            details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise RunDirError(
                f"{out} holds a different run ({details}). Use another --out, or --force to reuse it "
                f"(cached images whose settings differ would be mixed in).")
    save(cfg, saved)
    for stale in (out / "journal").glob("rank-*.stats.json"):  # counters of a session killed before its end
        stale.unlink()
    existing = load_all(out)
    if any((out / "journal").glob("rank-*.jsonl")):
        write_samples(out, existing)  # every rank then reads one file, and the final merge reads only new lines
    return existing


def check_model_identity(out: Path, name: str, origin: str) -> None:
    """Refuse to resume a run whose images came from another content of the same ``--model`` (a local folder
    whose files changed, a hub id now resolving to another commit): its cached images would be mixed in."""
    import json

    path = out / "model.json"
    if origin not in ("folder", "hub") or not path.is_file():
        return
    old = json.loads(path.read_text()).get("name")
    if old and old != name:
        raise RunDirError(f"{out} holds images of {old}, but --model now resolves to {name} (the folder's files or "
                          f"the hub revision changed). Use another --out, or --force to reuse it.")


def check_image(out: Path, rec: dict[str, Any] | None, expected: str, verify: bool = False
                ) -> tuple[bool, dict[str, int] | None]:
    """Does the record's PNG exist and match its sha256? ``(ok, refreshed cache fields or None)``.

    Without ``verify`` a PNG whose size and mtime (ns) equal the record's cached ``image_size`` /
    ``image_mtime_ns`` is trusted without re-hashing (as git and rsync do); any other PNG is hashed, and when
    it verifies its new size/mtime are returned so the caller re-journals them. The record must name the
    planned path ``expected``: a record pointing anywhere else (``../..``) never verifies.
    """
    import stat as stat_mod

    from rtdmd_bench.io import sha256_file

    if not rec or rec.get("image") != expected or not rec.get("image_sha256"):
        return False, None
    path = os.path.join(out, expected)  # strings, not pathlib: this runs once per image of the run
    try:
        st = os.stat(path)
    except OSError:
        return False, None
    if not stat_mod.S_ISREG(st.st_mode):
        return False, None
    cached = (rec.get("image_size"), rec.get("image_mtime_ns")) == (st.st_size, st.st_mtime_ns)
    if cached and not verify:
        return True, None
    if sha256_file(path) != rec["image_sha256"]:
        return False, None
    return True, None if cached else {"image_size": st.st_size, "image_mtime_ns": st.st_mtime_ns}


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


def _file_sha256(spec: Any) -> str:
    """The actual sha256 of a suite's prompt file when its manifest pins none (user suites)."""
    from rtdmd_bench.io import sha256_file

    path = spec.installed_path()
    return sha256_file(path) if path else ""


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
            "name": spec.name, "version": spec.version, "sha256": spec.sha256 or _file_sha256(spec),
            "n_prompts": spec.n_prompts or used,
            "n_prompts_used": used, "limit": cfg.limit,
            "images_per_prompt": cfg.samples_per_prompt or spec.images_per_prompt,
            "prompt_ids": f"first {used} prompts of the file (ids 0..{used - 1})", "source": spec.source,
            **({"user_suite": True} if getattr(spec, "user_suite", False) else {}),
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
