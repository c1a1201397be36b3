"""Prompt suites: registry built by scanning ``prompts/*/suite.yaml``; loaders; import/fetch with checksums.

    SUITES.spec("geneval").id           -> "geneval@1"
    load_suite("smoke")                 -> list[PromptRecord] (sha256 and count verified)
    import_suite("drawbench", FILE)     -> installs a canonical file into the user data dir after checking it
"""

from __future__ import annotations

from pathlib import Path

from rtdmd_bench.registry import Registry, RegistryError
from rtdmd_bench.suites.manifest import SuiteSpec, data_dir, prompts_dirs, read_manifest  # noqa: F401

SUITES: Registry[SuiteSpec] = Registry("suite")


def _scan() -> None:
    for base in prompts_dirs():
        for manifest in sorted(base.glob("*/suite.yaml")):
            if manifest.parent.name not in SUITES:
                SUITES.add(read_manifest(manifest))


_scan()


def suite_spec(name: str) -> SuiteSpec:
    """Spec of a registered suite or of a ``"module:Attr"`` plugin (a SuiteSpec or a manifest path)."""
    if name in SUITES or ":" not in name:
        return SUITES.spec(name)
    obj = SUITES.get(name)
    if isinstance(obj, (str, Path)):
        return read_manifest(Path(obj))
    if not isinstance(obj, SuiteSpec):
        raise RegistryError(f"suite plugin {name!r} must be a SuiteSpec or a path to a suite.yaml")
    return obj


def load_suite(name: str, verify: bool = True):
    """Prompts of suite ``name`` as ``list[PromptRecord]``."""
    from rtdmd_bench.suites.loaders import load_prompts

    return load_prompts(suite_spec(name), verify=verify)


FILE_FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}


def load_prompt_source(source: str, limit: int = 0):
    """Prompts of a registered suite name (checksums verified) or of a prompt FILE (``.txt``: one per line;
    ``.jsonl``: ``prompt`` + metadata fields; ``.csv``/``.tsv``: a ``prompt`` column), first ``limit`` if > 0.

    Returns:
        ``list[PromptRecord]`` (a malformed file is an error naming the file and line).
    """
    from rtdmd_bench.suites.loaders import SuiteFormatError, parse_file, to_records

    path = Path(source)
    if path.is_file():
        fmt = FILE_FORMATS.get(path.suffix)
        if fmt is None:
            raise SuiteFormatError(f"{path}: unknown prompt file type {path.suffix!r}; use one of {sorted(FILE_FORMATS)}")
        records = to_records(parse_file(path, fmt), tag_field=None)
    else:
        records = load_suite(source)
    records = records[:limit] if limit else records
    if not records:
        raise ValueError(f"no prompts in {source!r}")
    return records


def _canonical_bytes(spec: SuiteSpec, data: bytes) -> bytes:
    """The file as the manifest expects it: exact bytes, or (``fetch_dedupe``) first occurrences in order."""
    from rtdmd_bench.io import sha256_bytes

    if sha256_bytes(data) == spec.sha256 or not spec.fetch_dedupe:
        return data
    seen, lines = set(), []
    for line in data.decode("utf-8").splitlines():
        if line.strip() and line not in seen:
            seen.add(line)
            lines.append(line)
    return ("\n".join(lines) + "\n").encode("utf-8")


def git_blob_sha1(data: bytes) -> str:
    """The id git gives ``data`` as a blob: ``sha1(b"blob <len>\\0" + data)`` (what a repository tree lists).

    >>> git_blob_sha1(b"")
    'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391'
    """
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def install_suite_bytes(name: str, data: bytes, origin: str) -> Path:
    """Verify ``data`` against the manifest (sha256, prompt count, format) and install it atomically.

    A set without a manifest sha256 is verified by its ``git_blob_sha1`` (if given) and, once installed, by the
    sha256 and count recorded at its first import (``spec.provenance_path()``).
    """
    import time

    from rtdmd_bench.io import atomic_write_bytes, atomic_write_json, sha256_bytes
    from rtdmd_bench.suites.loaders import SuiteChecksumError, parse_file

    spec = suite_spec(name)
    data = _canonical_bytes(spec, data)
    digest = sha256_bytes(data)
    expected_sha, expected_n = spec.expected()
    if expected_sha and digest != expected_sha:
        where = "" if spec.sha256 else f" (recorded at its first import, {spec.provenance_path()})"
        raise SuiteChecksumError(
            f"{origin}: sha256 {digest} does not match suite {spec.id} (expected {expected_sha}{where}). "
            f"Is it the canonical {spec.name} file? Source: {spec.source}")
    if spec.git_blob_sha1 and git_blob_sha1(data) != spec.git_blob_sha1:
        raise SuiteChecksumError(
            f"{origin}: git blob id {git_blob_sha1(data)} does not match suite {spec.id} (its source repository "
            f"lists {spec.git_blob_sha1}). Is it the canonical {spec.name} file? Source: {spec.source}")
    dest = spec.data_path()
    atomic_write_bytes(dest, data)
    rows = parse_file(dest, spec.format, spec.prompt_column)
    if expected_n and len(rows) != expected_n:
        dest.unlink()
        raise SuiteChecksumError(f"{origin}: {len(rows)} prompts, suite {spec.id} expects {expected_n}")
    if not spec.sha256:
        atomic_write_json(spec.provenance_path(), {
            "suite": spec.id, "sha256": digest, "n_prompts": len(rows), "origin": str(origin),
            "git_blob_sha1": git_blob_sha1(data), "git_blob_verified": bool(spec.git_blob_sha1),
            "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return dest


def import_suite(name: str, file: str | Path) -> Path:
    """Install a local copy of a canonical prompt file; returns the installed path."""
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    return install_suite_bytes(name, path.read_bytes(), str(path))


def fetch_suite(name: str, timeout: float = 60.0) -> Path:
    """Download a suite from its public source (network only), verify it and install it."""
    import urllib.request

    spec = suite_spec(name)
    if not spec.fetch_url:
        raise RegistryError(f"suite {name!r} has no public download URL; use `rtdmd-bench prompts import {name} FILE`")
    try:
        with urllib.request.urlopen(spec.fetch_url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
            data = resp.read()
    except OSError as exc:
        raise ConnectionError(f"could not download {spec.fetch_url}: {exc}. Without network access, copy the file "
                              f"here and run `rtdmd-bench prompts import {name} FILE`.") from exc
    return install_suite_bytes(name, data, spec.fetch_url)


def prompt_hash(prompt: str) -> str:
    """Identity of a prompt across suites and training sets: the first 16 hex digits of sha256 of the stripped
    UTF-8 text (64 bits: no collision expected among millions of prompts).

    >>> prompt_hash("a photo of a cat")
    '0bd6b00a4a2d06b4'
    """
    import hashlib

    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:16]


class TestPromptsError(ValueError):
    """Training asked for a suite of benchmark test prompts without ``--allow-test-prompts``."""

    __test__ = False  # not a pytest class


def prompt_source_info(source: str) -> dict:
    """What a training prompt source is: ``{"source", "suite", "split", "sha256"}`` (torch-free, reads no prompts
    beyond a file's hash). ``suite`` is ``name@version`` for a registered suite (else None); a prompt FILE has
    ``split`` ``"test"`` when its sha256 is that of a registered test suite, else None."""
    from rtdmd_bench.io import sha256_file

    path = Path(source)
    if path.is_file():
        digest = sha256_file(path)
        same = [s for s in SUITES if s.expected()[0] == digest]
        return {"source": str(path), "suite": same[0].id if same else None,
                "split": same[0].split if same else None, "sha256": digest}
    spec = suite_spec(source)
    return {"source": source, "suite": spec.id, "split": spec.split, "sha256": spec.expected()[0] or None}


def check_training_source(source: str, allow_test_prompts: bool) -> dict:
    """``prompt_source_info(source)``, refusing benchmark test prompts unless ``allow_test_prompts``.

    Raises:
        TestPromptsError: naming the suite, the training sets to use instead and the flag.
    """
    info = prompt_source_info(source)
    if info["split"] == "test" and not allow_test_prompts:
        train = ", ".join(s.name for s in SUITES if s.split == "train")
        raise TestPromptsError(
            f"data.prompts: {source!r} is the test split of suite {info['suite']} (benchmark evaluation prompts); "
            f"training on it makes every evaluation on it meaningless. Train on a training set ({train}; install "
            f"one with `rtdmd-bench prompts import NAME FILE`), or pass --allow-test-prompts (data.allow_test_prompts"
            f": true): training.json records it and eval, compare and leaderboard flag results on these prompts.")
    return info
