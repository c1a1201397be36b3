"""Test support that ships with the package: tiny random weights in the production layout.

``write_tiny_weights(root)`` writes every part of the tiny weights (generators, scorers): random weights of the
real architectures (diffusers / transformers / open_clip classes with tiny configs and offline tokenizers) under
the same relative paths the production loaders read. ``--weights tiny`` builds the parts it needs on demand into
a cache (``rtdmd_bench.weights.tiny_root``) through the same ``ensure_tiny_part``; tests call this directly into a
temporary directory.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_weights(root: str | Path) -> Path:
    """Write tiny random weights for every model and reward into ``root``; returns ``root``."""
    from rtdmd_bench.models import TINY_PART as MODELS_PART
    from rtdmd_bench.rewards import TINY_PART as REWARDS_PART
    from rtdmd_bench.weights import ensure_tiny_part

    root = Path(root)
    for part in (MODELS_PART, REWARDS_PART):
        ensure_tiny_part(root, part)
    return root


def write_hf_cache(cache: str | Path, repo: str, folder: str | Path, commit: str,
                   refs: tuple[str, ...] = ("main",)) -> Path:
    """Put ``folder``'s files into a Hugging Face cache as ``huggingface_hub`` lays out a downloaded snapshot
    (``models--OWNER--REPO/blobs/<sha256>``, ``snapshots/<commit>/<path>`` relative symlinks to the blobs,
    ``refs/<name>`` holding the commit), so hub-id resolution is tested offline; returns the snapshot folder."""
    import hashlib
    import os

    base = Path(cache) / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / commit
    folder = Path(folder)
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (base / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (base / "refs" / ref).write_text(commit)
    return snap


def write_geneval_suite(base: str | Path, name: str, rows: list[dict], images_per_prompt: int = 2,
                        default_rewards: tuple[str, ...] = ("geneval",)) -> Path:
    """A GenEval-format suite ``base/name/{prompts.jsonl, suite.yaml}`` (checksum-pinned) from metadata ``rows``;
    returns its manifest (register it with ``SUITES.add(read_manifest(path))``)."""
    import hashlib
    import json

    folder = Path(base) / name
    folder.mkdir(parents=True)
    data = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "prompts.jsonl").write_text(data)
    (folder / "suite.yaml").write_text(
        f"name: {name}\nversion: '1'\nformat: geneval_jsonl\nfile: prompts.jsonl\nlocation: repo\n"
        f"sha256: {hashlib.sha256(data.encode()).hexdigest()}\nn_prompts: {len(rows)}\n"
        f"images_per_prompt: {images_per_prompt}\nmetadata_fields: [tag, include, exclude]\ntag_field: tag\n"
        f"default_rewards: [{', '.join(default_rewards)}]\n")
    return folder / "suite.yaml"
