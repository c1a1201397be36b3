"""Scoring a batch of images and turning it into ``samples.jsonl`` records: shared by ``evaluate`` (generated
images) and ``score_images`` (a folder of images made elsewhere), so both produce the same numbers and records."""

from __future__ import annotations

from typing import Any

from rtdmd_bench.eval.plan import WorkItem


def score_batch(workers: Any, names: tuple[str, ...], items: list[WorkItem], images: Any) -> dict[str, Any]:
    """Scores of a batch for each reward: ``{reward: (scores list, valid list, parts, extras)}``.

    Args:
        workers: has ``reward(name) -> Reward`` (built lazily, once) and ``device``.
        names: reward names.
        items: the batch's work items (prompts and metadata).
        images: float ``[B, 3, H, W]`` in [0, 1] (uint8-quantised, exactly the saved pixels).
    """
    import math

    import torch

    out = {}
    prompts = [it.prompt for it in items]
    meta = [it.metadata for it in items]
    for name in names:
        reward = workers.reward(name)
        try:
            with torch.inference_mode():
                res = reward(images.to(workers.device), prompts, meta)
        except Exception as exc:  # a scorer (or a plugin's) failure: name the reward and the batch, keep the cause
            ids = ", ".join(str(it.prompt_id) for it in items[:8]) + (" ..." if len(items) > 8 else "")
            raise RewardFailedError(f"reward {name!r} failed on a batch of suite {items[0].suite!r} (prompt ids "
                                    f"{ids}): {type(exc).__name__}: {exc}. The images before it are recorded; "
                                    f"fix the reward and run the same command again to resume.") from exc
        scores = [float(s) for s in res.scores.float().cpu()]
        parts = {k: [float(x) if math.isfinite(float(x)) else None for x in v.float().cpu()]
                 for k, v in res.parts.items()}
        # a NaN or infinite score, or a NaN part, makes the image invalid for the reward (counted, never averaged)
        valid = [bool(v) and math.isfinite(s) and all(p[i] is not None for p in parts.values())
                 for i, (v, s) in enumerate(zip(res.valid.cpu().tolist(), scores))]
        out[name] = (scores, valid, parts, res.extras)
    return out


class RewardFailedError(RuntimeError):
    """A reward raised while scoring a batch (the message names the reward and the batch)."""


def sample_record(item: WorkItem, base: dict[str, Any] | None, scored: dict[str, Any], i: int) -> dict[str, Any]:
    """The ``samples.jsonl`` record of image ``i`` of a scored batch, extending ``base`` (its earlier record)."""
    rec = dict(base) if base else {}
    rec.update(suite=item.suite, suite_version=item.suite_id.split("@", 1)[1], prompt_id=item.prompt_id,
               sample_idx=item.sample_idx, prompt=item.prompt, seed=item.seed, tag=item.tag)
    for field in ("scores", "valid", "parts", "extras"):
        rec[field] = dict(rec.get(field, {}))
    for name, (scores, valid, parts, extras) in scored.items():
        rec["scores"][name] = scores[i] if valid[i] else None
        rec["valid"][name] = valid[i]
        rec["parts"][name] = {k: v[i] for k, v in parts.items()}
        rec["extras"][name] = {k: v[i] for k, v in extras.items()}
    return rec


def reward_entries(plan: Any, merged: dict, weights: str | None, options: dict[str, dict],
                   resamples: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(results entries "suite/reward" -> aggregate, reward identities)`` of a plan's records, each entry carrying
    the version and units the reward's options give it (``rewards.reward_identity``)."""
    import dataclasses

    from rtdmd_bench.eval.aggregate import entry
    from rtdmd_bench.rewards import reward_identity, reward_spec

    info = {name: reward_identity(name, weights, options.get(name))
            for name in dict.fromkeys(n for names in plan.rewards.values() for n in names)}
    entries = {}
    for suite, names in plan.rewards.items():
        recs = [merged[it.key] for it in plan.items if it.suite == suite and it.key in merged]
        for name in names:
            spec = dataclasses.replace(reward_spec(name), version=info[name]["version"], units=info[name]["units"])
            entries[f"{suite}/{name}"] = entry(recs, plan.suites[suite], name, spec, resamples)
    return entries, info
