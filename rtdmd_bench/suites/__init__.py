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


def install_suite_bytes(name: str, data: bytes, origin: str) -> Path:
    """Verify ``data`` against the manifest (sha256, prompt count, format) and install it atomically."""
    from rtdmd_bench.io import atomic_write_bytes, sha256_bytes
    from rtdmd_bench.suites.loaders import SuiteChecksumError, SuiteFormatError, parse_file

    spec = suite_spec(name)
    try:
        data = _canonical_bytes(spec, data)
    except UnicodeDecodeError as exc:
        raise SuiteFormatError(f"{origin}: not UTF-8 text ({exc.reason} at byte {exc.start}); is it a prompt "
                               f"file? Suite {spec.id} expects {spec.format} (source: {spec.source})") from None
    digest = sha256_bytes(data)
    if spec.sha256 and digest != spec.sha256:
        raise SuiteChecksumError(
            f"{origin}: sha256 {digest} does not match suite {spec.id} (expected {spec.sha256}). "
            f"Is it the canonical {spec.name} file? Source: {spec.source}")
    dest = spec.data_path()
    atomic_write_bytes(dest, data)
    rows = parse_file(dest, spec.format, spec.prompt_column)
    if spec.n_prompts and len(rows) != spec.n_prompts:
        dest.unlink()
        raise SuiteChecksumError(f"{origin}: {len(rows)} prompts, suite {spec.id} expects {spec.n_prompts}")
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
