"""``--model`` accepts any diffusers flow model: a registry name, a ``module:Attr`` plugin, a local diffusers folder, or
a Hugging Face repo id ``OWNER/REPO[@revision]`` (``hf://OWNER/REPO`` forces the hub when a local folder has that
name: otherwise the local folder wins, and a note says so).

A folder or repo becomes a ``ModelSpec``: its family is detected from ``model_index.json`` and
``transformer/config.json`` by the registered ``FamilySpec``s (an unsupported pipeline class is an error listing the
supported ones), the family's ``sampling_defaults`` for that checkpoint give sampler/steps/guidance, the VAE's
``sample_size`` the resolution. Identity in results: a repo by ``OWNER/REPO@<commit>`` (the revision resolved in the
cache), a folder by ``<folder name>@sha256:<first 12>`` of ``folder_sha256`` (the loaded files' contents), never by
an absolute path.

Hub lookups go to the Hugging Face cache first (``snapshot_download(local_files_only=True)``: works offline), then
a catalogue entry's folder under the weights root that was fetched from the same repo, and only then the network
(exactly the pipeline's files, ``models.fetch``). Offline with nothing cached is one line naming the fix.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtdmd_bench.models.spec import ModelSpec
from rtdmd_bench.registry import RegistryError

REPO_ID = re.compile(r"^(?:hf://)?(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")
LAYOUT = ("model_index.json plus the component folders save_pretrained writes (transformer/, vae/, scheduler/, "
          "text_encoder*/, tokenizer*/)")


class ModelRefError(ValueError):
    """A ``--model`` value that names no usable model (one line: what was tried and the fix)."""


@dataclass(frozen=True)
class Resolved:
    """A ``--model`` value resolved: its ``spec`` (``None`` for a plugin class without one) and notes for the user."""

    spec: ModelSpec | None
    target: Any = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelRefError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise ModelRefError(f"{path}: {what} must be a JSON object")
    return data


def _hash_cache() -> Path:
    from rtdmd_bench.weights import cache_dir

    return cache_dir() / "file-hashes.json"


def folder_sha256(folder: Path, files: list[str]) -> str:
    """sha256 over ``(relative path, sha256 of the content)`` of ``files`` in ``folder``, sorted by path.

    Per-file digests are cached by (absolute path, size, mtime) in the user cache, so a multi-GB folder is read
    once; a changed file changes its mtime and is hashed again.
    """
    import hashlib

    from rtdmd_bench.io import atomic_write_json, sha256_file

    cache_path = _hash_cache()
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    total, dirty = hashlib.sha256(), False
    for rel in sorted(files):
        path = (folder / rel).resolve()
        st = path.stat()
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key], dirty = sha256_file(path), True
        total.update(f"{rel}\0{cache[key]}\n".encode())
    if dirty:
        try:
            atomic_write_json(cache_path, cache)
        except OSError:  # a read-only cache only costs re-hashing next time
            pass
    return total.hexdigest()


def _listing(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts]


def folder_spec(folder: Path, *, name: str, origin: str, hub_id: str = "", revision: str = "",
                content_sha256: str = "") -> ModelSpec:
    """The ``ModelSpec`` of a diffusers pipeline folder: family detected, that checkpoint's sampling defaults."""
    from rtdmd_bench.models.family import FAMILIES, detect_family
    from rtdmd_bench.weights import TINY_MARKER

    index = _read_json(folder / "model_index.json", "model_index.json")
    tcfg_path = folder / "transformer" / "config.json"
    tcfg = _read_json(tcfg_path, "transformer config") if tcfg_path.is_file() else {}
    try:
        fam = detect_family(index, tcfg)
    except ValueError as exc:
        raise ModelRefError(f"{name}: {exc}") from None
    defaults = fam.sampling_defaults(index, tcfg)
    vae_path = folder / "vae" / "config.json"
    size = _read_json(vae_path, "VAE config").get("sample_size") if vae_path.is_file() else None
    size = int(size) if isinstance(size, int) and size >= 64 else 1024
    tiny = any((p / TINY_MARKER).is_file() for p in (folder, *list(folder.parents)[:2]))
    return ModelSpec(name=name, target=FAMILIES.spec(fam.name).target, family=fam.name,
                     description=f"{origin} model ({fam.name}, {defaults.label})", weights_dir=str(folder),
                     hub_id=hub_id, revision=revision or "", height=size, width=size, dtype="bfloat16", tiny=tiny,
                     origin=origin, content_sha256=content_sha256, **defaults.fields())


def local_folder_spec(folder: Path, given: str) -> ModelSpec:
    """A local folder as a model (identity: folder name + content hash of the files the pipeline loads)."""
    from rtdmd_bench.models.fetch import select_pipeline_files

    folder = folder.resolve()
    if not (folder / "model_index.json").is_file():
        hint = (" (a single-file checkpoint: convert it once with diffusers' Pipeline.from_single_file(...)"
                ".save_pretrained(DIR))") if folder.is_file() else ""
        raise ModelRefError(f"--model {given}: {folder} is not a diffusers pipeline folder (no model_index.json); "
                            f"expected {LAYOUT}{hint}")
    index = _read_json(folder / "model_index.json", "model_index.json")
    files = [f for f in select_pipeline_files(index, _listing(folder)) if (folder / f).is_file()]
    digest = folder_sha256(folder, files)
    return folder_spec(folder, name=f"{folder.name}@sha256:{digest[:12]}", origin="folder", content_sha256=digest)


def _cached_snapshot(repo: str, revision: str | None) -> Path | None:
    """The snapshot folder of ``repo@revision`` in the Hugging Face cache holding a complete pipeline, or None."""
    from huggingface_hub import snapshot_download

    from rtdmd_bench.hf import hub_cache_dir
    from rtdmd_bench.models.fetch import pipeline_components

    try:
        path = Path(snapshot_download(repo, revision=revision, cache_dir=hub_cache_dir(), local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), incomplete snapshot, malformed cache
        return None
    index_path = path / "model_index.json"
    if not index_path.is_file():
        return None
    index = _read_json(index_path, "model_index.json")
    if any(not (path / c).is_dir() for c in pipeline_components(index)):
        return None  # only some files cached (e.g. model_index.json read by another tool)
    return path


def _local_dir_revision(folder: Path) -> str:
    """The commit a ``snapshot_download(local_dir=...)`` folder was fetched at (its download metadata), or ''."""
    meta = folder / ".cache" / "huggingface" / "download" / "model_index.json.metadata"
    try:
        return meta.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return ""


def hub_spec(repo: str, revision: str | None, weights_root: Path | None) -> ModelSpec:
    """A hub repo as a model: the cached snapshot, else a catalogue folder fetched from it, else a download."""
    from rtdmd_bench.hf import hub_cache_dir, hub_error_line, hub_is_offline
    from rtdmd_bench.models import MODELS

    snapshot = _cached_snapshot(repo, revision)
    if snapshot is not None:
        sha = snapshot.name
        return folder_spec(snapshot, name=f"{repo}@{sha[:12]}", origin="hub", hub_id=repo, revision=sha)
    if weights_root is not None:
        for spec in MODELS.in_registration_order():
            folder = weights_root / spec.weights_dir
            if spec.hub_id == repo and revision in (None, spec.revision) and (folder / "model_index.json").is_file():
                sha = _local_dir_revision(folder) or spec.revision
                return folder_spec(folder, name=f"{repo}@{sha[:12]}", origin="hub", hub_id=repo, revision=sha)
    fix = (f"run `rtdmd-bench weights fetch {repo}{'@' + revision if revision else ''}` on a machine with network "
           f"access (or copy its pipeline folder here and pass the folder to --model)")
    if hub_is_offline():
        raise ModelRefError(f"--model {repo}: not in the Hugging Face cache ({hub_cache_dir()}) and the Hub is "
                            f"offline (HF_HUB_OFFLINE=1); {fix}")
    from rtdmd_bench.models.fetch import download_plan, plan_model_fetch
    from rtdmd_bench.weights import WeightsFetchError

    try:
        download_plan(plan_model_fetch(repo, revision, "a local folder, and pass that folder to --model"), None)
    except WeightsFetchError as exc:
        raise ModelRefError(f"--model {repo}: {exc}") from None
    except Exception as exc:  # pragma: no cover - network failures are converted above
        raise ModelRefError(f"--model {repo}: {hub_error_line(exc)}; {fix}") from None
    snapshot = _cached_snapshot(repo, revision)
    if snapshot is None:
        raise ModelRefError(f"--model {repo}: downloaded, but the cache holds no complete pipeline; {fix}")
    return folder_spec(snapshot, name=f"{repo}@{snapshot.name[:12]}", origin="hub", hub_id=repo, revision=snapshot.name)


def check_model_ref(name: str) -> tuple[str, ...]:
    """Validate a ``--model`` value without loading or downloading anything; returns notes for the user.

    Registry names and plugins are checked as the registry does; a local folder must hold a diffusers pipeline of a
    supported family; a hub repo id is only checked for its form (resolution may need the cache or the network).
    """
    from rtdmd_bench.models import MODELS

    m = REPO_ID.match(name)
    path = Path(name).expanduser()
    if name in MODELS or (":" in name and m is None and not path.exists()):
        MODELS.resolve(name)
        return ()
    if m is not None and not path.exists():
        return ()
    return resolve_model(name).notes  # a folder: reading two JSON files and hashing (cached) is cheap enough


def resolve_model(name: str, weights_root: str | os.PathLike | None = None) -> Resolved:
    """Resolve a ``--model`` value (see the module docstring).

    Raises:
        RegistryError: an unknown bare name (did-you-mean) or an unloadable plugin.
        ModelRefError: a folder that is not a diffusers pipeline, an unsupported pipeline class, a hub id that is
            neither cached nor downloadable.
    """
    from rtdmd_bench.models import MODELS

    if name in MODELS:
        return Resolved(MODELS.spec(name))
    root = Path(weights_root) if weights_root is not None else None
    m = REPO_ID.match(name)
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or (m is None and "/" in name and path.parent.is_dir())
    if not name.startswith("hf://") and (path.exists() or looks_like_path):
        if not path.exists():
            raise ModelRefError(f"--model {name}: no such folder (a model is a registry name, module:Attr, a local "
                                f"diffusers folder or a Hugging Face repo id OWNER/REPO[@revision])")
        notes = (f"'{name}' is a local folder and also looks like a Hugging Face repo id: using the local folder "
                 f"{path.resolve()} (write hf://{m['repo']} for the hub repo)",) if m else ()
        return Resolved(local_folder_spec(path, name), notes=notes)
    if ":" in name and m is None and not name.startswith("hf://"):
        target = MODELS.get(name)
        return Resolved(getattr(target, "spec", None), target=target)
    if m is not None:
        return Resolved(hub_spec(m["repo"], m["rev"], root))
    raise RegistryError(f"{MODELS.unknown(name)} Also accepted: a local diffusers folder (./path) or a Hugging Face "
                        f"repo id OWNER/REPO[@revision].")
