"""What ``--lora`` accepts, resolved to a local file before anything loads.

``--lora REF[:SCALE]`` (repeatable, merged in order after the model entry's own stack), where REF is

* a path, relative to the **current directory** (or absolute): a reference ``.pt``, a diffusers/peft
  ``.safetensors``, or a PEFT adapter folder (``models.lora`` detects the format);
* a Hugging Face Hub file ``OWNER/REPO:path/in/repo[@revision]``, downloaded once into the weights root as
  ``loras/<REPO>/<path>`` (``loras/<REPO>@<revision>/<path>`` for a pinned revision; the catalogue's layout, so a
  file fetched by ``rtdmd-bench weights fetch`` is reused) and identified by its sha256 from then on;
* for compatibility, a path relative to the weights root (``loras/FLUX2-4B-RTDMD/rtdmd/generator_ema.pt``), used
  only when no such path exists under the current directory.

``SCALE`` (default 1) multiplies the LoRA's own ``alpha/r``, as diffusers' ``fuse_lora(lora_scale=SCALE)`` does.
Results record each LoRA by the reference as given, never by a machine-specific absolute path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtdmd_bench.models.lora import LoraError

HUB_REF = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+):(?P<file>[^@:]+?)(?:@(?P<rev>[\w./-]+))?$")


@dataclass(frozen=True)
class LoraRef:
    """One resolved LoRA: the local ``path`` to merge, its ``scale`` and what results record.

    Attributes:
        ref: the reference as the user gave it (without the scale): recorded in results.
        path: the local file or folder.
        scale: multiplier of ``alpha/r`` (1 = the LoRA as trained).
        source: ``local`` | ``weights-root`` | ``hub`` | ``catalogue``.
        hub: ``(repo, file, revision or None)`` for hub references.
    """

    ref: str
    path: Path
    scale: float = 1.0
    source: str = "local"
    hub: tuple[str, str, str | None] | None = None


def split_scale(text: str) -> tuple[str, float]:
    """``"a/b.pt:0.5"`` -> ``("a/b.pt", 0.5)``; no numeric ``:SCALE`` suffix -> scale 1."""
    head, sep, tail = text.rpartition(":")
    if sep:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, 1.0


def hub_folder(root: Path, repo: str, revision: str | None) -> Path:
    """The folder of a hub repo's LoRA files under the weights root: ``loras/<REPO>[@<revision>]``."""
    return Path(root) / "loras" / (repo.split("/", 1)[1] + (f"@{revision}" if revision else ""))


def hub_destination(root: Path, repo: str, file: str, revision: str | None) -> Path:
    """Where a hub LoRA file lives under the weights root (the catalogue's ``loras/<REPO>/<file>`` layout)."""
    dest = (hub_folder(root, repo, revision) / file).resolve()
    if not dest.is_relative_to((Path(root) / "loras").resolve()):
        raise LoraError(f"hub LoRA path {file!r} of {repo} leaves the weights root's loras/ folder")
    return dest


def _download(repo: str, file: str, revision: str | None, folder: Path, dest: Path, ref: str) -> None:
    """Fetch one hub file to ``dest`` (network), or one clear line saying why not and what to do instead."""
    from rtdmd_bench.hf import hub_error_line, hub_is_offline

    manual = (f"or download https://huggingface.co/{repo}/resolve/{revision or 'main'}/{file} by hand and put it "
              f"at {dest}")
    if hub_is_offline():
        raise LoraError(f"--lora {ref}: not under the weights root ({dest}) and the Hugging Face Hub is offline "
                        f"(HF_HUB_OFFLINE=1); run once with network access, {manual}")
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(repo, file, revision=revision, local_dir=str(folder))  # writes folder/<file>
    except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, DNS, 404)
        raise LoraError(f"--lora {ref}: {hub_error_line(exc)}; {manual}") from None


def resolve_lora(text: str, root: Path, cwd: Path | None = None) -> LoraRef:
    """Resolve one ``--lora`` argument (see the module docstring); downloads a hub file the first time.

    Raises:
        LoraError: nothing exists at the path (both places it looked are named) or the hub file cannot be fetched.
    """
    ref, scale = split_scale(text)
    cwd = Path.cwd() if cwd is None else Path(cwd)
    local = (cwd / Path(ref).expanduser())
    if local.exists():
        return LoraRef(ref, local.resolve(), scale, "local")
    m = HUB_REF.match(ref)
    if m:
        repo, file, rev = m["repo"], m["file"], m["rev"]
        dest = hub_destination(root, repo, file, rev)
        if not dest.is_file():
            _download(repo, file, rev, hub_folder(root, repo, rev), dest, ref)
        return LoraRef(ref, dest, scale, "hub", (repo, file, rev))
    in_root = Path(root) / ref
    if not Path(ref).is_absolute() and in_root.exists():
        return LoraRef(ref, in_root, scale, "weights-root")
    raise LoraError(f"--lora {ref}: no such file or folder: looked for {local} (relative to the current directory)"
                    f" and {in_root} (relative to the weights root). A Hugging Face Hub LoRA is written "
                    f"OWNER/REPO:path/in/repo[@revision]")


def resolve_loras(texts: Sequence[str], root: Path, cwd: Path | None = None) -> list[LoraRef]:
    """``resolve_lora`` for each ``--lora`` argument, in order."""
    return [resolve_lora(t, root, cwd) for t in texts]
