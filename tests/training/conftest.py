"""Training-test fixtures: a repo-shipped prompt suite registered for one test."""

from __future__ import annotations

import hashlib

import pytest


@pytest.fixture
def register_suite(tmp_path):
    """``register_suite(name, text, split, fmt="txt", metadata_fields=())`` writes ``text`` and its manifest under
    ``tmp_path/prompts/<name>``, registers the suite and removes it after the test; returns the name."""
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest

    added = []

    def make(name: str, text: str, split: str, fmt: str = "txt", metadata_fields: tuple[str, ...] = ()) -> str:
        d = tmp_path / "prompts" / name
        d.mkdir(parents=True)
        (d / "prompts.txt").write_text(text)
        n = sum(1 for line in text.splitlines() if line.strip())
        (d / "suite.yaml").write_text(
            f"name: {name}\nversion: '1'\nsplit: {split}\nformat: {fmt}\nfile: prompts.txt\nlocation: repo\n"
            f"sha256: {hashlib.sha256(text.encode()).hexdigest()}\nn_prompts: {n}\n"
            f"metadata_fields: [{', '.join(metadata_fields)}]\ndefault_rewards: [saturation]\n")
        SUITES.add(read_manifest(d / "suite.yaml"))
        added.append(name)
        return name

    yield make
    for name in added:
        SUITES.remove(name)
