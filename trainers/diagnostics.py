"""The recipes' dead-term guards: which terms a config weights non-zero, how each one's death is measured, and the
config keys that revive it (``training.term_grads.DeadTermGuard``).

    stage1_guard(cfg)              dm (generator updates), fake, consistency
    stage2_guard(cfg, bp_weights)  pg, kl, dm, bp, fake, consistency
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtdmd_bench.training.metrics import to_float
from rtdmd_bench.training.term_grads import DeadTermGuard


def _f(metrics: Mapping[str, Any], key: str) -> float | None:
    return to_float(metrics[key]) if key in metrics else None


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.0f}%"


def _bp(cfg: Any, m: Mapping[str, Any]) -> str:
    active, r, r_min = _f(m, "bp/hinge_active"), _f(m, "bp_reward"), _f(m, "bp_reward_min")
    r_txt = "?" if r is None else f"{r:.3g}"
    if active == 0.0:
        low = "" if r_min is None else f" (min {r_min:.3g})"
        return f"BP hinge inactive: R = {r_txt}{low} ≥ margin {cfg.bp.margin:g} on 100% of samples"
    return f"BP gradient is 0 with the hinge active on {_pct(active)} of samples (mean R = {r_txt})"


def _pg(cfg: Any, m: Mapping[str, Any]) -> str:
    spread = ", ".join(f"{k[len('reward_spread/'):]} {to_float(v):.3g}" for k, v in m.items()
                       if k.startswith("reward_spread/"))
    if _f(m, "adv/abs_max") == 0.0:
        return (f"policy gradient dead: the advantages are 0 on 100% of samples (no training reward varies within a "
                f"prompt group; within-group spread: {spread or 'n/a'})")
    return f"policy gradient dead: clip_frac = {_pct(_f(m, 'clip_frac'))} of the ratios outside policy.clip_range"


def _dm(m: Mapping[str, Any]) -> str:
    loss = _f(m, "loss_dmd")
    return f"DM term dead: loss_dmd = {'?' if loss is None else f'{loss:.3g}'} (teacher and fake score agree exactly)"


def _generic(term: str, loss_key: str, m: Mapping[str, Any]) -> str:
    loss = _f(m, loss_key)
    return f"{term} term dead: {loss_key} = {'?' if loss is None else f'{loss:.3g}'}"


def stage2_guard(cfg: Any, bp_weights: Mapping[str, float]) -> DeadTermGuard:
    """The guard of a stage-2 (or GRPO) run: every term whose configured weight is non-zero."""
    expected: dict[str, str] = {}
    if cfg.policy.enabled:
        expected["pg"] = ("rewards (a reward that varies between the images of a prompt), sampling.k >= 2, "
                          "policy.clip_range, or policy.enabled: false")
        if cfg.policy.kl_beta > 0:
            expected["kl"] = "policy.kl_beta: 0"
    if cfg.aux.loss != "none":
        if cfg.aux.weight != 0:
            expected["dm"] = "aux.real_guidance_scale (a teacher different from the fake score), or aux.weight: 0"
        expected["fake"] = "renoise.weight_clamp, or aux.loss: none"
        if cfg.aux.consistency.enabled and cfg.aux.consistency.weight > 0:
            expected["consistency"] = "aux.consistency.enabled: false"
    if bp_weights and cfg.bp.scale != 0:
        expected["bp"] = ("bp.rewards (weights in each reward's units so that R < bp.margin: the reference uses "
                          "pickscore: 1/26 = 0.0384615), bp.margin, or bp.enabled: false")

    def diagnose(term: str, m: Mapping[str, Any]) -> str:
        if term == "bp":
            return _bp(cfg, m)
        if term == "pg":
            return _pg(cfg, m)
        if term == "dm":
            return _dm(m)
        key = {"kl": "kl", "fake": "loss_fake_ac", "consistency": "loss_fake_consistency"}[term]
        return _generic(term, key, m)

    return DeadTermGuard(expected, diagnose, cfg.diagnostics.dead_term_patience)


def stage1_guard(cfg: Any) -> DeadTermGuard:
    """The guard of a stage-1 (or plain-DMD) run: the generator's DM term and the fake score's terms."""
    expected = {"dm": "dmd.real_guidance_scale (a teacher different from the fake score)",
                "fake": "renoise.weight_clamp"}
    if cfg.consistency.enabled and cfg.consistency.weight > 0:
        expected["consistency"] = "consistency.enabled: false"

    def diagnose(term: str, m: Mapping[str, Any]) -> str:
        if term == "dm":
            return _dm(m)
        return _generic(term, "loss_fake_ac" if term == "fake" else "loss_fake_consistency", m)

    return DeadTermGuard(expected, diagnose, cfg.diagnostics.dead_term_patience)
