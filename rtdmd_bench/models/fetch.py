"""Download a model entry's weights into the weights root (network; the only downloader for generators).

``fetch_model_weights(name, root)`` snapshots the base pipeline ``spec.hub_id@spec.revision`` into
``root/spec.weights_dir`` and each LoRA ``(repo, file, dest)`` of ``spec.lora_hub`` to ``root/dest``. Gated repos
(FLUX.1-dev, SD3/SD3.5) need ``huggingface-cli login`` first. The CLI command ``rtdmd-bench weights fetch NAME``
wraps this function.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rtdmd_bench.models import MODELS

# only what a diffusers pipeline folder needs (skip single-file checkpoints and ONNX/flax copies)
ALLOW_PATTERNS = ["model_index.json", "*/*.json", "*/*.safetensors", "*/*.txt", "*/*.model", "*/*.jinja",
                  "*/*.safetensors.index.json"]


def fetch_model_weights(name: str, root: str | Path, *, include_lora: bool = True) -> list[Path]:
    """Download ``name``'s base pipeline and LoRA files under ``root``; returns the paths written.

    Raises:
        ValueError: ``name`` is a tiny preset (built locally, never downloaded) or has no hub id.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    spec = MODELS.spec(name)
    if spec.tiny:
        raise ValueError(f"{name!r} uses tiny random weights, written locally by rtdmd_bench.testing.write_tiny_weights")
    if not spec.hub_id:
        raise ValueError(f"{name!r} has no hub id to fetch from")
    root = Path(root).expanduser()
    base = root / spec.weights_dir
    snapshot_download(repo_id=spec.hub_id, revision=spec.revision, local_dir=str(base), allow_patterns=ALLOW_PATTERNS)
    written = [base]
    if include_lora:
        missing = set(spec.lora) - {dest for _, _, dest in spec.lora_hub}
        if missing:
            raise ValueError(f"{name!r}: no hub source for LoRA file(s) {sorted(missing)}; place them by hand")
        for repo, filename, dest in spec.lora_hub:
            cached = hf_hub_download(repo_id=repo, filename=filename)
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, target)
            written.append(target)
    return written
