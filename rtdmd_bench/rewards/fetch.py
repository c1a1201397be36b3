"""Download reward weights into the root layout (network only) and verify them (offline).

``fetch_reward_weights(name, root)`` follows ``RewardSpec.fetch`` triples ``(hub repo, files, destination)``:
``files`` is one filename (``hf_hub_download``) or comma-separated names/globs (``snapshot_download`` with
``allow_patterns``), then downloads ``RewardSpec.fetch_urls`` (files hosted outside the Hub) and checks each
against its recorded sha256 before moving it into place. ``verify_weights(root)`` checks presence of every
declared weight path and the sizes / sha256 recorded in REWARDS.md (and in ``fetch_urls``) where they are
known; ``fetch_urls`` files are optional (a reward option selects them). Nothing here runs at scorer load time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtdmd_bench.rewards import REWARDS

# relative path -> (size in bytes or None, sha256 or None); sources: REWARDS.md §4-§7 (HF pages / measured)
KNOWN_CHECKSUMS: dict[str, tuple[int | None, str | None]] = {
    "aesthetic/sac+logos+ava1-l14-linearMSE.pth":
        (3714759, "21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0"),
    "hpsv2/HPS_v2.1_compressed.pt":
        (1972490005, "c57a38fb4a2f7e7c15bf00da2ea377cdf165448b4dd1052a484c215a998c9837"),
    "imagereward/ImageReward.pt": (None, "d71dc8d4912bc633c06ab8ef1ef6a81e8199d4369f14b47b29baf1d19de561f6"),
    "PickScore_v1/pytorch_model.bin": (None, "3f0cf1c6e533f478534404cb3ca6938103becbfe4312c6affc077c274a757972"),
}
KNOWN_CHECKSUMS.update({dest: (None, sha) for spec in REWARDS for _, sha, dest in spec.fetch_urls})


class WeightsFetchError(RuntimeError):
    """A download failed (no network, offline mode, unknown repo); the message says which file and why."""


def fetch_reward_weights(name: str, root: str | Path) -> list[Path]:
    """Download everything reward ``name`` needs into ``root`` (network). Returns the destination paths."""
    spec = REWARDS.spec(name)
    root = Path(root).expanduser()
    written = []
    if spec.fetch:
        written += _fetch_hub(name, spec, root)
    for url, sha, dest in spec.fetch_urls:
        written.append(_fetch_url(name, url, sha, root / dest))
    return written


def _fetch_hub(name, spec, root: Path) -> list[Path]:
    from huggingface_hub import hf_hub_download, snapshot_download

    written = []
    for repo, files, dest in spec.fetch:
        patterns = [f.strip() for f in files.split(",") if f.strip()]
        target = root / dest
        try:
            if len(patterns) == 1 and not any(ch in patterns[0] for ch in "*?["):
                written.append(Path(hf_hub_download(repo, patterns[0], local_dir=target)))
            else:
                written.append(Path(snapshot_download(repo, allow_patterns=patterns or None, local_dir=target)))
        except Exception as exc:  # huggingface_hub raises many types (offline, HTTP, DNS)
            raise WeightsFetchError(
                f"could not download {files or 'the repository'} of {repo} into {target} for reward {name!r}: "
                f"{type(exc).__name__}: {exc}\nFetching needs network access to huggingface.co "
                f"(and HF_HUB_OFFLINE unset); alternatively copy the files into that layout by hand."
            ) from exc
    return written


def _fetch_url(name: str, url: str, sha256: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically after checking its sha256 (a mismatch leaves nothing behind)."""
    import urllib.request

    from rtdmd_bench.io import atomic_write_bytes, sha256_bytes

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL from the spec)
            data = resp.read()
    except OSError as exc:
        raise WeightsFetchError(
            f"could not download {url} into {dest} for reward {name!r}: {type(exc).__name__}: {exc}\n"
            f"Fetching needs network access; alternatively copy the file to that path by hand "
            f"(expected sha256 {sha256}).") from exc
    got = sha256_bytes(data)
    if got != sha256:
        raise WeightsFetchError(f"{url} has sha256 {got}, expected {sha256}; nothing was written to {dest}")
    atomic_write_bytes(dest, data)
    return dest


@dataclass(frozen=True)
class WeightCheck:
    """One verified path: ``status`` is ok / missing / size mismatch / sha256 mismatch / present (unchecked)."""

    reward: str
    path: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "present (unchecked)", "absent (optional)")


def _check_file(root: Path, rel: str, reward: str, check_sha: bool, optional: bool = False) -> WeightCheck:
    from rtdmd_bench.io import sha256_file

    path = root / rel
    if not path.exists():
        if optional:
            return WeightCheck(reward, rel, "absent (optional)", f"selected by a reward option; rtdmd-bench weights fetch {reward}")
        return WeightCheck(reward, rel, "missing", f"fix: rtdmd-bench weights fetch {reward}")
    size, sha = KNOWN_CHECKSUMS.get(rel, (None, None))
    if size is not None and path.stat().st_size != size:
        return WeightCheck(reward, rel, "size mismatch", f"{path.stat().st_size} bytes, expected {size}")
    if sha is not None and check_sha:
        got = sha256_file(path)
        if got != sha:
            return WeightCheck(reward, rel, "sha256 mismatch", f"{got}, expected {sha}")
        return WeightCheck(reward, rel, "ok", "sha256 verified")
    return WeightCheck(reward, rel, "present (unchecked)" if sha is None else "ok",
                       "" if sha is None else "size verified; sha256 skipped")


def verify_weights(root: str | Path, names: list[str] | None = None, check_sha: bool = True) -> list[WeightCheck]:
    """Check the declared weight paths of ``names`` (default: every reward with weight files) under ``root``."""
    root = Path(root).expanduser()
    specs = [REWARDS.spec(n) for n in names] if names else [s for s in REWARDS if s.weight_files or s.fetch_urls]
    checks = []
    for spec in specs:
        optional = {dest for _, _, dest in spec.fetch_urls}
        rels = list(spec.weight_files) + [k for k in KNOWN_CHECKSUMS
                                          if k.split("/")[0] in {w.split("/")[0] for w in spec.weight_files}
                                          and k not in spec.weight_files and k not in optional]
        checks.extend(_check_file(root, rel, spec.name, check_sha) for rel in dict.fromkeys(rels))
        checks.extend(_check_file(root, rel, spec.name, check_sha, optional=True) for rel in sorted(optional))
    return checks
