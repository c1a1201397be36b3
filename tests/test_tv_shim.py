"""The torchvision shim: makes torchvision importable next to CPU torch, and is a no-op where its ops load."""

from __future__ import annotations

import subprocess
import sys
import types

import rtdmd_bench.tv_shim as shim


def test_torchvision_open_clip_and_hf_processors_import():
    code = ("import rtdmd_bench, torchvision, open_clip, timm\n"
            "from transformers import CLIPImageProcessor\n"
            "import torch; torch.ops.torchvision.nms\nprint('OK')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


def test_noop_when_compiled_ops_load(tmp_path, monkeypatch):
    """Where torchvision's _C library loads (CPU+CPU or CUDA+CUDA builds), nothing is defined."""
    import torch

    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "_C.so").write_bytes(b"")
    spec = types.SimpleNamespace(submodule_search_locations=[str(pkg)])
    loaded = []
    monkeypatch.setattr(shim.importlib.util, "find_spec", lambda name: spec)
    monkeypatch.setattr(torch.ops, "load_library", lambda path: loaded.append(path))
    monkeypatch.setattr(shim, "_LIB", None)
    monkeypatch.setattr(shim, "STATE", dict(shim.STATE))
    assert shim.install() is False
    assert loaded == [str(pkg / "_C.so")] and shim._LIB is None
    assert shim.STATE["reason"] == "torchvision compiled ops load"


def test_noop_without_torchvision(monkeypatch):
    monkeypatch.setattr(shim.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shim, "_LIB", None)
    assert shim.install() is False
