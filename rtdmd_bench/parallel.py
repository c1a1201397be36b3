"""The only module that touches ``torch.distributed`` (and reads the torchrun environment): process group,
DDP/FSDP2 wrapping, collectives. Evaluation (sharding + one barrier) and training both use it.

Runs under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) with gloo on CPU and nccl on
CUDA; without those variables everything degrades to a single process and the collectives are identities.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    """Process grid of this run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` as set by torchrun; ``(0, 1)`` for a plain process (no process group needed)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def world_size() -> int:
    """``WORLD_SIZE`` of the torchrun launch (1 for a plain process)."""
    return rank_world()[1]


def check_device(device: str | None) -> None:
    """Raise ``ValueError`` with the fix unless ``device`` is ``auto``/None, ``cpu``, ``cuda``/``cuda:N`` with CUDA
    present (and N in range) or ``mps`` where available (checked before any model loads)."""
    if device in (None, "auto", "cpu"):
        return
    name = str(device)
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}); "
                             f"use --device cpu")
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return
    if kind == "mps" and not index:
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")
        return
    raise ValueError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N")


def init(device: str | None = None) -> Dist:
    """Initialise from the torchrun environment (idempotent). ``device``: ``cpu``/``cuda``/None (auto)."""
    rank, world = rank_world()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(f"cuda:{local}") if want.startswith("cuda") and ":" not in want else torch.device(want)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank=rank, world=world, local_rank=local, device=dev)


def shutdown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.enabled:
        torch.distributed.barrier()


def wrap(module: nn.Module, dist: Dist, strategy: str) -> nn.Module:
    """Wrap a trainable network: ``ddp`` (DistributedDataParallel), ``fsdp`` (FSDP2 ``fully_shard`` per block and
    root) or ``none``. Single-process runs are never wrapped."""
    if not dist.enabled or strategy == "none":
        return module
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(dist.device.type, (dist.world,))
        for block in _blocks(module):
            fully_shard(block, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    raise ValueError(f"unknown parallel strategy {strategy!r}; expected ddp, fsdp or none")


def _blocks(module: nn.Module) -> list[nn.Module]:
    """Transformer blocks to shard individually: children of every ModuleList whose name ends in 'blocks'."""
    out = []
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and name.split(".")[-1].endswith("blocks"):
            out.extend(child)
    return out


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (FSDP2 shards in place, nothing to unwrap)."""
    return getattr(module, "module", module) if type(module).__name__ == "DistributedDataParallel" else module


@contextmanager
def no_sync(module: nn.Module, active: bool) -> Iterator[None]:
    """Skip the DDP gradient all-reduce for an accumulation micro-step (``active``); FSDP2 defers its reduce-scatter."""
    if active and hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    elif active and hasattr(module, "set_requires_gradient_sync"):
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    else:
        with nullcontext():
            yield


def all_gather_tensor(t: Tensor, dist: Dist) -> Tensor:
    """Concatenate equally shaped ``[n, ...]`` tensors of all ranks along dim 0, in rank order."""
    if not dist.enabled:
        return t
    out = [torch.empty_like(t) for _ in range(dist.world)]
    torch.distributed.all_gather(out, t.contiguous())
    return torch.cat(out)


def all_gather_object(obj: Any, dist: Dist) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not dist.enabled:
        return [obj]
    out: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(out, obj)
    return out


def all_reduce_mean(t: Tensor, dist: Dist) -> Tensor:
    """Mean of ``t`` over ranks (metrics)."""
    if not dist.enabled:
        return t
    t = t.detach().clone()
    torch.distributed.all_reduce(t)
    return t / dist.world


def full_state_dict(module: nn.Module, trainable_only: bool = True) -> dict[str, Tensor]:
    """Unsharded CPU state dict (FSDP2 DTensors gathered), optionally only ``requires_grad`` entries."""
    names = {n for n, p in module.named_parameters() if p.requires_grad} if trainable_only else None
    state = {}
    for n, p in module.named_parameters():
        if names is not None and n not in names:
            continue
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        state[n] = full.detach().cpu().clone()
    return state


def load_full_state_dict(module: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy full (unsharded) tensors into the module's parameters, re-sharding DTensors."""
    with torch.no_grad():
        for n, p in module.named_parameters():
            if n not in state:
                continue
            src = state[n].to(p.device if not hasattr(p, "device_mesh") else p.to_local().device)
            if hasattr(p, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                p.copy_(distribute_tensor(src.to(p.dtype), p.device_mesh, p.placements))
            else:
                p.copy_(src.to(p.dtype))


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> Tensor:
    """Global gradient-norm clip (FSDP2-aware: DTensor norms are reduced across shards)."""
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm > 0 else float("inf"))
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm


def optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer, dist: Dist) -> dict:
    """Optimizer state identical on every rank (FSDP2: gathered to full tensors on CPU)."""
    if dist.enabled and _is_sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(module, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer, state: dict, dist: Dist) -> None:
    """Inverse of ``optimizer_state``."""
    if dist.enabled and _is_sharded(module):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(module, optimizer, state, options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state)


def _is_sharded(module: nn.Module) -> bool:
    return any(hasattr(p, "device_mesh") for p in module.parameters())
