"""Test rules for tests/ and benchmarks/: CPU only, no network (sockets blocked, HF offline), tiny weights once."""

from __future__ import annotations

import os
import socket

import pytest

# Offline before anything imports huggingface_hub / transformers / diffusers.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # set in each pytest-xdist worker process
if XDIST_WORKER:  # a worker and the processes it starts share the cores with the others
    os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import rtdmd_bench  # noqa: E402,F401  (installs the torchvision shim hook before any torchvision import)


class NetworkBlocked(OSError):
    """Raised when a test tries to reach the network (an OSError, as a real offline machine gives). Every
    attempt is also recorded, and a test that made one fails unless it asked for ``network_attempts``."""


ATTEMPTS: list[str] = []


_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else ""
    return host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "") or str(host).startswith("127.")


def _guarded_connect(self, address):
    if not _is_local(address):
        ATTEMPTS.append(f"connect {address!r}")
        raise NetworkBlocked(f"test tried to connect to {address!r}")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "127.0.0.1", "::1", "0.0.0.0") and not str(host).startswith("127."):
        ATTEMPTS.append(f"resolve {host!r}")
        raise NetworkBlocked(f"test tried to resolve {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _no_network_attempts(request):
    """Fail any test that tried the network (even if the code under test swallowed the OSError)."""
    ATTEMPTS.clear()
    yield
    if ATTEMPTS and "network_attempts" not in request.fixturenames:
        pytest.fail(f"network access attempted: {ATTEMPTS[:3]}")


@pytest.fixture
def network_attempts() -> list[str]:
    """Opt-in for tests of offline error paths: the recorded (blocked) attempts."""
    return ATTEMPTS


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    import torch

    # under pytest-xdist every worker is a process of its own: one thread each keeps the cores from thrashing
    torch.set_num_threads(1 if XDIST_WORKER else 2)
    yield


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """Root of tiny random weights for every model and reward, written once per test session through
    the production writer; also exported so ``--weights tiny`` in CLI tests resolves to it."""
    from rtdmd_bench.testing import write_tiny_weights

    if XDIST_WORKER:  # one copy for all workers (parts are built under an OS lock)
        root = tmp_path_factory.getbasetemp().parent / "tiny-weights"
    else:
        root = tmp_path_factory.mktemp("tiny-weights")
    write_tiny_weights(root)
    os.environ["RTDMD_BENCH_TINY_WEIGHTS"] = str(root)
    return str(root)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the user cache out of tests (prompts imports, tiny weights built on demand)."""
    cache = tmp_path_factory.getbasetemp() / "rtdmd-cache"
    monkeypatch.setenv("RTDMD_BENCH_CACHE", str(cache))
    monkeypatch.setenv("RTDMD_BENCH_DATA", str(cache / "data"))
    yield


def pytest_collection_modifyitems(config, items):
    """Files holding ``slow`` tests run first (stable otherwise): under ``-n 2 --dist loadfile`` a long file that
    starts last would leave one worker idle while the other finishes it."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
