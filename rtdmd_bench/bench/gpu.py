"""The GPU benchmark (``rtdmd-bench bench gpu``): full-size generators on one GPU, bare pipeline vs the harness.

For FLUX.2-klein-4B and SD3.5-Medium (``bench.gpu_models``: published configs, random bf16 weights, built on the
device), at 1024x1024 and 4 steps without CFG:

* ``bare``: the diffusers pipeline's own call (``pipe(prompt=..., num_inference_steps=4, guidance_scale=1)``)
  on the same unique prompts, batch by batch; images/s from the device-synchronised wall time.
* ``harness``: ``rtdmd_bench.eval.evaluate`` on the same generator (the catalogue's 4-step CPS entry of the
  model), the same prompts (each once: the prompt cache is cleared before the run, so both sides encode every
  prompt once) and batch size, with the ``saturation`` reward: results.json ``images_per_s`` (generation,
  quantisation, scoring, PNG encode/hash/write, journal) and the end-to-end rate of the whole ``evaluate`` call.
* peak GPU memory of each, at batch 1, 4 and 8; ``--compile`` compiles the transformer (``torch.compile``) first.
* one stage-2 RTDMD training step on FLUX.2-klein-4B (``trainers/stage2_rtdmd``: LoRA rank 32, gradient
  checkpointing, K=2 groups of 2 images, AC-DMD fake update, SubGRPO and final-step reward back-propagation with
  the differentiable ``saturation`` reward) through the recipe's in-memory world: time and peak memory of the
  first (warm-up) and second step.

It writes one JSON and prints a markdown table (``render_table``). Budget: under 8 minutes on one H200. ``tiny``
runs the same code on the families' tiny presets at 64x64 on the CPU (seconds; a test runs it in CI).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUITE = "gpu-bench-prompts"
REWARD = "saturation"
STAGE2_FULL = {"model.gradient_checkpointing": True, "model.eta": 0.9, "train.steps": 2, "train.save_every": 0,
               "train.log_backends": [], "train.console_every": 0, "sampling.batch_size": 4, "sampling.k": 2,
               "sampling.batches_per_epoch": 1, "sampling.grad_accum": 1, "rewards": {REWARD: 1.0},
               "aux.loss": "ac_dmd", "aux.fake_batch_size": 2, "bp.enabled": True, "bp.batch_size": 2,
               "lora.rank": 32, "lora.alpha": 64.0}
STAGE2_TINY = {**STAGE2_FULL, "lora.rank": 4, "lora.alpha": 8.0, "sampling.batch_size": 2, "aux.fake_batch_size": 1,
               "bp.batch_size": 1}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def _prompts(n: int) -> list[str]:
    subjects = ("a red fox", "an old lighthouse", "a bowl of ramen", "a vintage car", "a glass teapot", "two cats")
    places = ("in the snow", "at sunset", "on a wooden table", "in a neon city", "under a storm", "in a meadow")
    return [f"{subjects[i % 6]} {places[(i // 6) % 6]}, photo number {i}" for i in range(n)]


def _register_suite(root: Path, prompts: Sequence[str]) -> None:
    """A one-off suite of unique prompts (each prompt once: no cache advantage for either side)."""
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest

    folder = root / "prompts" / SUITE
    folder.mkdir(parents=True)
    data = "".join(p + "\n" for p in prompts).encode()
    (folder / "prompts.txt").write_bytes(data)
    (folder / "suite.yaml").write_text(
        f"name: {SUITE}\nversion: '1'\nformat: txt\nfile: prompts.txt\nlocation: repo\n"
        f"sha256: {hashlib.sha256(data).hexdigest()}\nn_prompts: {len(prompts)}\nimages_per_prompt: 1\n"
        f"default_rewards: [{REWARD}]\n")
    SUITES.remove(SUITE)
    SUITES.add(read_manifest(folder / "suite.yaml"))


def bare_rate(gen: Any, prompts: Sequence[str], batch: int, device: str) -> tuple[float, float | None]:
    """Images/s of the diffusers pipeline's own call on ``prompts`` in batches (after one warm-up batch)."""
    import torch

    kwargs = {"text_encoder_out_layers": tuple(gen.option("text_encoder_out_layers", (9, 18, 27)))} \
        if gen.spec.family == "flux2_klein" else {}

    def call(chunk: Sequence[str]) -> None:
        with torch.inference_mode():
            gen.pipe(prompt=list(chunk), num_inference_steps=gen.spec.steps, height=gen.spec.height,
                     width=gen.spec.width, guidance_scale=1.0, output_type="pt",
                     max_sequence_length=int(gen.option("max_sequence_length", 512)),
                     generator=[torch.Generator().manual_seed(i) for i in range(len(chunk))], **kwargs)

    call(prompts[:batch])
    _sync(device)
    _reset_peak(device)
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        call(prompts[i:i + batch])
    _sync(device)
    return len(prompts) / (time.perf_counter() - t0), _peak_gb(device)


def harness_rate(gen: Any, model: str, n: int, batch: int, device: str, out: Path) -> dict[str, Any]:
    """``evaluate()`` on ``gen`` (one warm-up batch first): results.json's images/s, end-to-end images/s, profile."""
    from rtdmd_bench.eval.config import EvalConfig, ModelOverrides
    from rtdmd_bench.eval.runner import evaluate

    def cfg(limit: int, folder: Path) -> EvalConfig:
        return EvalConfig(model=model, suites=(SUITE,), rewards=(REWARD,), limit=limit, batch_size=batch,
                          device=device, out=str(folder),
                          overrides=ModelOverrides(height=gen.spec.height, width=gen.spec.width))

    evaluate(cfg(batch, out / "warm-up"), generator=gen)
    gen._cache.clear()  # the bare pipeline encodes every prompt: so does the harness
    _sync(device)
    _reset_peak(device)
    t0 = time.perf_counter()
    results = evaluate(cfg(n, out / "run"), generator=gen)
    _sync(device)
    wall = time.perf_counter() - t0
    run = results["run"]
    return {"images_per_s": run["images_per_s"], "end_to_end_images_per_s": n / wall,
            "peak_gpu_mem_gb": _peak_gb(device), "profile_s": run.get("profile_s", {})}


def train_step(gen: Any, device: str, tiny: bool, out: Path) -> dict[str, Any]:
    """Two stage-2 RTDMD steps on ``gen`` (generator, fake score and teacher are copies of its transformer)."""
    from rtdmd_bench import rewards
    from rtdmd_bench.config import to_dict, with_values
    from rtdmd_bench.training.image_backbone import ImageBackbone
    from rtdmd_bench.training.recipe import InMemoryWorld
    from rtdmd_bench.training.registry import TRAINERS

    rec = TRAINERS.get("stage2_rtdmd")
    values = STAGE2_TINY if tiny else STAGE2_FULL
    cfg = with_values(rec.config(), {**values, "model.name": gen.spec.name})
    world = InMemoryWorld(ImageBackbone(gen, gradient_checkpointing=cfg.model.gradient_checkpointing),
                          prompts=_prompts(8), rewards={REWARD: (rewards.build(REWARD, device=device), 1.0)})
    run = rec.build(cfg, to_dict(cfg), weights=None, out=str(out), device=device, world=world)
    times, peaks = [], []
    for _ in range(2):
        _sync(device)
        _reset_peak(device)
        t0 = time.perf_counter()
        rec.step(run)
        _sync(device)
        times.append(time.perf_counter() - t0)
        peaks.append(_peak_gb(device))
    run.sess.logger.close()
    return {"config": values, "step_s": times, "peak_gpu_mem_gb": peaks}


def run_benchmark(*, tiny: bool = False, models: Sequence[str] = ("flux2-klein-4b", "sd35m"),
                  batches: Sequence[int] = (1, 4, 8), images: int = 16, compile_transformer: bool = False,
                  train: bool = True, device: str | None = None) -> dict[str, Any]:
    """Run every measurement; returns the JSON-ready results (see the module docstring)."""
    import torch

    from rtdmd_bench.bench.gpu_models import build_generator, parameter_count

    device = device or ("cpu" if tiny else "cuda")
    size = 64 if tiny else 1024
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    if tiny:  # tiny ops: one intra-op thread (on a busy machine a second one costs a time slice per op)
        torch.set_num_threads(1)
    info = {"mode": "tiny (CPU check of the code path; no GPU figure)" if tiny else "full-size, random bf16 weights",
            "device": device, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
            "torch": torch.__version__, "resolution": size, "steps": 4, "images_per_point": images,
            "compile": compile_transformer, "reward": REWARD, "models": {}}
    root = Path(tempfile.mkdtemp(prefix="rtdmd-gpu-bench-"))
    t_all = time.perf_counter()
    try:
        _register_suite(root, _prompts(images))
        for model in models:
            t0 = time.perf_counter()
            gen = build_generator(model, device, tiny, size, size)
            if compile_transformer:
                gen.transformer.compile()
            entry: dict[str, Any] = {"catalogue_entry": gen.spec.name, "parameters": parameter_count(gen.pipe),
                                     "build_s": time.perf_counter() - t0, "batches": {}}
            for batch in batches:
                n = max(batch, images // batch * batch)
                bare, bare_peak = bare_rate(gen, _prompts(n), batch, device)
                harness = harness_rate(gen, gen.spec.name, n, batch, device, root / f"{model}-b{batch}")
                entry["batches"][str(batch)] = {
                    "images": n, "bare_images_per_s": bare, "bare_peak_gpu_mem_gb": bare_peak, **{
                        f"harness_{k}": v for k, v in harness.items()},
                    "ratio": (harness["images_per_s"] or 0.0) / bare,
                    "end_to_end_ratio": harness["end_to_end_images_per_s"] / bare}
            if train and model == "flux2-klein-4b":
                info["train"] = train_step(gen, device, tiny, root / "train")
            info["models"][model] = entry
            del gen
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    finally:
        from rtdmd_bench.suites import SUITES

        torch.set_num_threads(threads)
        SUITES.remove(SUITE)
        shutil.rmtree(root, ignore_errors=True)
    info["total_s"] = time.perf_counter() - t_all
    return info


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def render_table(results: dict[str, Any]) -> str:
    """The README table: one row per model and batch size, then the training step."""
    lines = [f"GPU benchmark ({results['mode']}; {results.get('gpu') or results['device']}, "
             f"{results['resolution']}x{results['resolution']}, 4 steps, reward {results['reward']}"
             + (", torch.compile" if results.get("compile") else "") + ")", "",
             "| model | batch | bare pipeline img/s | harness img/s (ratio) | end-to-end img/s (ratio) "
             "| peak GPU GB bare / harness |", "|---|---|---|---|---|---|"]
    for model, entry in results["models"].items():
        for batch, r in entry["batches"].items():
            lines.append(f"| {model} | {batch} | {_fmt(r['bare_images_per_s'])} | {_fmt(r['harness_images_per_s'])} "
                         f"({_fmt(r['ratio'], '.3f')}x) | {_fmt(r['harness_end_to_end_images_per_s'])} "
                         f"({_fmt(r['end_to_end_ratio'], '.3f')}x) | {_fmt(r['bare_peak_gpu_mem_gb'], '.1f')} / "
                         f"{_fmt(r['harness_peak_gpu_mem_gb'], '.1f')} |")
    train = results.get("train")
    if train:
        lines += ["", f"Stage-2 RTDMD step on FLUX.2-klein-4B (LoRA rank {train['config']['lora.rank']}, gradient "
                      f"checkpointing, K={train['config']['sampling.k']}, batch {train['config']['sampling.batch_size']}):"
                      f" first {train['step_s'][0]:.2f} s, second {train['step_s'][1]:.2f} s; peak GPU memory "
                      f"{_fmt(train['peak_gpu_mem_gb'][1], '.1f')} GB."]
    lines.append(f"\nTotal {results['total_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], path: Path) -> None:
    from rtdmd_bench.io import atomic_write_text

    atomic_write_text(path, json.dumps(results, indent=2) + "\n")
