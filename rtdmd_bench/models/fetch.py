"""Download exactly the files a generator's diffusers pipeline loads (network; the only downloader for generators).

What a pipeline loads is read from its ``model_index.json``: the folders of its components (``transformer``,
``vae``, ``text_encoder*``, ``tokenizer*``, ``scheduler``), and in each folder the configs, tokenizer files and one
set of weights: ``*.safetensors`` without a precision variant (``model.fp16.safetensors``,
``model.fp16-00001-of-00002.safetensors``, ``*.index.fp16.json`` are duplicates of the same weights), pickles
(``.bin``) only where a component ships no safetensors. Nothing else: no top-level single-file checkpoint
(``sd3.5_medium.safetensors``, ``flux1-dev.safetensors``), no ComfyUI ``text_encoders/`` folder, no stray copies
(``vae copy/``). ``select_pipeline_files`` is pure (tested on recorded listings of real repos);
``plan_model_fetch`` reads the listing with sizes from the Hub (``HfApi.model_info(files_metadata=True)``) and
``--dry-run`` prints it.

Catalogue entries go to ``root/spec.weights_dir`` (and their LoRAs to ``root/loras/...``); a bare hub repo id goes
to the Hugging Face cache, where ``--model OWNER/REPO`` finds it. Gated repos (FLUX.1-dev, SD3/SD3.5) need
``hf auth login`` first. Without network the error is one line naming the manual alternative.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtdmd_bench.weights import WeightsFetchError

_VARIANT = re.compile(r"\.(fp16|bf16|fp32|fp8[\w]*|int8|int4|nf4)(?=[.-])")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".pb", ".gguf")
_SMALL_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")  # configs, tokenizers, chat templates


def pipeline_components(model_index: Mapping[str, Any]) -> list[str]:
    """Folders a pipeline loads: ``model_index.json`` entries ``name: [library, class]`` that are not null."""
    return sorted(k for k, v in model_index.items()
                  if not k.startswith("_") and isinstance(v, (list, tuple)) and len(v) == 2 and all(v))


def _component_files(names: list[str]) -> list[str]:
    """One component's files: small files plus one weight set (safetensors without a variant preferred)."""
    weights = [n for n in names if n.endswith(_WEIGHT_SUFFIXES) and not _VARIANT.search(n)]
    safetensors = [n for n in weights if n.endswith(".safetensors")]
    chosen = safetensors or [n for n in weights if n.endswith((".bin", ".pt", ".pth"))]
    small = [n for n in names if n.endswith(_SMALL_SUFFIXES) and not _VARIANT.search(n)
             and not (safetensors and ".bin.index" in n)]
    return sorted(small + chosen)


def select_pipeline_files(model_index: Mapping[str, Any], files: Iterable[str]) -> list[str]:
    """The repo paths a diffusers pipeline loads, out of ``files`` (every path of the repo or folder).

    Example: of SD3.5-Medium's repo this keeps ``model_index.json`` and the 9 component folders' configs, tokenizer
    files and full-precision safetensors; it drops ``text_encoders/`` (ComfyUI single files, 16 GB), every
    ``*.fp16*`` duplicate, ``vae copy/``, ``sd3.5_medium.safetensors`` and the README/images.
    """
    by_folder: dict[str, list[str]] = {}
    for f in files:
        folder, sep, name = f.partition("/")
        if sep and "/" not in name:
            by_folder.setdefault(folder, []).append(name)
    out = ["model_index.json"]
    for comp in pipeline_components(model_index):
        out += [f"{comp}/{n}" for n in _component_files(by_folder.get(comp, []))]
    return out


@dataclass(frozen=True)
class FetchPlan:
    """What a fetch will download: ``files`` ``[(repo path, bytes or None)]`` of ``repo@revision`` into ``dest``."""

    repo: str
    revision: str
    files: tuple[tuple[str, int | None], ...]
    dest: str
    skipped: tuple[tuple[str, int | None], ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(s or 0 for _, s in self.files)

    def render(self) -> str:
        """Human-readable listing: one line per file, then the total (and what is left out)."""
        lines = [f"{self.repo}@{self.revision} -> {self.dest}"]
        lines += [f"  {_size(s):>10}  {p}" for p, s in self.files]
        lines.append(f"  {_size(self.total_bytes):>10}  total, {len(self.files)} files")
        if self.skipped:
            lines.append(f"  not downloaded: {len(self.skipped)} files, "
                         f"{_size(sum(s or 0 for _, s in self.skipped))} (not loaded by the pipeline)")
        return "\n".join(lines)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def plan_from_listing(repo: str, revision: str, model_index: Mapping[str, Any],
                      listing: Sequence[tuple[str, int | None]], dest: str) -> FetchPlan:
    """The fetch plan of a repo whose full listing (paths and sizes) is known."""
    keep = set(select_pipeline_files(model_index, [p for p, _ in listing]))
    return FetchPlan(repo, revision, tuple((p, s) for p, s in listing if p in keep), dest,
                     tuple((p, s) for p, s in listing if p not in keep))


def _offline_line(what: str, repo: str, dest: str) -> str:
    return (f"cannot fetch {what}: the Hugging Face Hub is offline here (HF_HUB_OFFLINE=1). Manual alternative: copy "
            f"the pipeline folder of {repo} (model_index.json and its component folders, as save_pretrained writes "
            f"them) into {dest}")


def plan_model_fetch(repo: str, revision: str | None, dest: str, what: str = "") -> FetchPlan:
    """List ``repo@revision`` with sizes from the Hub and select the pipeline's files (network).

    Raises:
        WeightsFetchError: offline, unreachable, gated or unknown repo (one line, with the manual alternative).
    """
    from rtdmd_bench.hf import hub_error_line, hub_is_offline

    what = what or repo
    if hub_is_offline():
        raise WeightsFetchError(_offline_line(what, repo, dest))
    import json

    from huggingface_hub import HfApi, hf_hub_download

    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
        sha = info.sha or revision or "main"
        index = json.loads(Path(hf_hub_download(repo, "model_index.json", revision=sha)).read_text())
    except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, DNS, gated)
        raise WeightsFetchError(f"cannot fetch {what} ({repo}): {hub_error_line(exc)}. Manual alternative: copy "
                                f"its pipeline folder into {dest}") from None
    listing = [(s.rfilename, s.size) for s in info.siblings or []]
    return plan_from_listing(repo, sha, index, listing, dest)


def download_plan(plan: FetchPlan, local_dir: str | None) -> str:
    """Download the plan's files (into ``local_dir``, or the Hugging Face cache when None); returns the folder."""
    from huggingface_hub import snapshot_download

    from rtdmd_bench.hf import hub_error_line

    try:
        return snapshot_download(plan.repo, revision=plan.revision, local_dir=local_dir,
                                 allow_patterns=[p for p, _ in plan.files])
    except Exception as exc:  # network failure mid-way: what is there stays, a re-run resumes
        raise WeightsFetchError(f"download of {plan.repo} stopped: {hub_error_line(exc)}; run the same "
                                f"command again to resume") from None


def fetch_model_weights(name: str, root: str | Path, *, include_lora: bool = True,
                        dry_run: bool = False) -> list[Path] | list[FetchPlan]:
    """Download ``name``'s pipeline files (catalogue entry: into ``root/spec.weights_dir``; a hub repo id
    ``OWNER/REPO[@rev]``: into the Hugging Face cache) and the entry's LoRA files.

    Returns:
        the paths written, or with ``dry_run`` the plans (nothing downloaded).

    Raises:
        ValueError: ``name`` is a tiny preset (built locally, never downloaded) or has no hub id.
        WeightsFetchError: no network / offline / gated (one line).
    """
    from rtdmd_bench.models import MODELS

    root = Path(root).expanduser()
    if name in MODELS:
        spec = MODELS.spec(name)
        if spec.tiny:
            raise ValueError(f"{name!r} uses tiny random weights, written locally by `rtdmd-bench weights make-tiny`")
        if not spec.hub_id:
            raise ValueError(f"{name!r} has no hub id to fetch from")
        repo, revision, local_dir = spec.hub_id, spec.revision, str(root / spec.weights_dir)
    else:
        from rtdmd_bench.hf import hub_cache_dir

        repo, _, revision = name.partition("@")
        revision, local_dir = revision or "main", None
        if repo.count("/") != 1:
            raise ValueError(f"{name!r} is neither a model name nor a Hugging Face repo id OWNER/REPO[@revision]")
    plan = plan_model_fetch(repo, revision, local_dir or f"the Hugging Face cache ({hub_cache_dir()})", what=name)
    if dry_run:
        return [plan]
    written = [Path(download_plan(plan, local_dir))]
    if include_lora and name in MODELS:
        written += _fetch_loras(MODELS.spec(name), root)
    return written


def _fetch_loras(spec: Any, root: Path) -> list[Path]:
    from huggingface_hub import hf_hub_download

    from rtdmd_bench.hf import hub_error_line

    missing = set(spec.lora) - {dest for _, _, dest in spec.lora_hub}
    if missing:
        raise ValueError(f"{spec.name!r}: no hub source for LoRA file(s) {sorted(missing)}; place them by hand")
    written = []
    for repo, filename, dest in spec.lora_hub:
        target = root / dest
        try:
            cached = hf_hub_download(repo_id=repo, filename=filename)
        except Exception as exc:  # huggingface_hub raises many types
            raise WeightsFetchError(f"cannot fetch LoRA {repo}:{filename}: {hub_error_line(exc)}. Manual "
                                    f"alternative: put the file at {target}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        written.append(target)
    return written
