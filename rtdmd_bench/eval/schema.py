"""The documented, versioned schema of ``results.json`` and ``samples.jsonl`` (one place, like lm-eval's
result_schema.py). ``validate_results`` / ``validate_sample`` return a list of problems (empty = valid).

results.json (``SCHEMA_VERSION`` 1)
-----------------------------------
schema_version    int      this module's SCHEMA_VERSION
package_version   str      rtdmd_bench.__version__
git_hash          str|null commit of the harness that produced the run
created           str      ISO-8601 UTC time the results were written
tiny_weights      bool     true when every number comes from tiny random weights (never mix with real ones)
config            object   the resolved EvalConfig (also saved as config.yaml in the run dir)
model             object   generator.describe(): name, family, base, revision, weights_dir, lora [{path, sha256,
                           training?}], nfe, steps, sigmas, eta, guidance, height, width, dtype, sampler, tiny;
                           training_rewards [names] when a LoRA carries a training.json (rtdmd-bench train
                           writes one): compare's reward-hacking check reads it
suites            object   "name@version" -> {name, version, sha256, n_prompts (in the file), n_prompts_used,
                           images_per_prompt, limit (null = all prompts), prompt_ids ("first N" note), source,
                           split ("train" | "test"), trained_on_prompts? {n_overlap, n_prompts, loras,
                           allow_test_prompts} when a LoRA's training prompts (training.json prompt hashes) overlap}
rewards           object   reward name -> {version, units, higher_is_better, differentiable, options} (version and
                           units as the reward's options make them, e.g. GenEval2 "am"); OCR adds files
                           [{name, bytes, sha256}] of the detector and recogniser that read the images
results           object   "suite/reward" -> entry:
    suite, suite_version, reward, reward_version, units, higher_is_better
    mean          float|null   mean over valid images (null when none is valid)
    ci95          [lo, hi]|null 95% percentile bootstrap CI over prompts (prompts resampled with replacement)
    std           float|null   standard deviation over valid images
    n             int          valid images
    n_prompts     int          prompts with at least one valid image
    n_invalid     int          images whose score was NaN/failed (excluded, never averaged)
    tags          object       tag -> {mean, ci95, n} where the suite has tags
    macro_over_tags float|null unweighted mean of the per-tag means (GenEval's official "overall")
    prompt_level  float|null   for 0/1 scores: fraction of prompts with at least one image scoring 1
    headline      str          which statistic leaderboards show: "mean" or "macro_over_tags" (the reward's
                               declared headline; "mean" when the suite has no tags)
    headline_ci95 [lo, hi]|null 95% bootstrap CI of the headline statistic (for macro_over_tags: prompts
                               resampled within each tag)
    trained_on_prompts true    (only when set) the model was trained on prompts of this suite: the number is
                               contaminated (compare and leaderboard say "trained on these prompts")
    breakdowns    object       name -> group -> {mean, ci95, n}: sub-scores a reward reports per image (GenEval2:
                               "skill" -> object/count/attribute/position/verb, atom-level means over all
                               atoms of the skill, CI over prompts); {} for other rewards
run               object   world_size, hardware {platform, python, torch, device, gpu}, wall_time_s,
                           generation_time_s, scoring_time_s, images_generated, images_total, images_per_s,
                           seed, bootstrap_resamples

samples.jsonl: one JSON object per image, sorted by (suite, prompt_id, sample_idx)
-------------------------------------------------------------------------------
suite, suite_version, prompt_id (int), sample_idx (int), prompt, seed (int), tag (str|null),
image (path relative to the run dir), image_sha256, scores {reward: float|null}, valid {reward: bool},
parts {reward: {part: float}}, extras {reward: {key: json}}, gen_time_s (float, per image share of its batch)
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1

RESULTS_KEYS: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "package_version": str,
    "git_hash": (str, type(None)),
    "created": str,
    "tiny_weights": bool,
    "config": dict,
    "model": dict,
    "suites": dict,
    "rewards": dict,
    "results": dict,
    "run": dict,
}
ENTRY_KEYS: dict[str, type | tuple[type, ...]] = {
    "suite": str,
    "suite_version": str,
    "reward": str,
    "reward_version": str,
    "units": str,
    "higher_is_better": bool,
    "mean": (float, int, type(None)),
    "ci95": (list, type(None)),
    "std": (float, int, type(None)),
    "n": int,
    "n_prompts": int,
    "n_invalid": int,
    "tags": dict,
    "macro_over_tags": (float, int, type(None)),
    "prompt_level": (float, int, type(None)),
    "headline": str,
    "headline_ci95": (list, type(None)),
}
SAMPLE_KEYS: dict[str, type | tuple[type, ...]] = {
    "suite": str,
    "suite_version": str,
    "prompt_id": int,
    "sample_idx": int,
    "prompt": str,
    "seed": int,
    "tag": (str, type(None)),
    "image": str,
    "image_sha256": str,
    "scores": dict,
    "valid": dict,
    "parts": dict,
    "extras": dict,
    "gen_time_s": (float, int),
}
RUN_KEYS = ("world_size", "hardware", "wall_time_s", "images_per_s", "seed")


def _check(obj: dict[str, Any], keys: dict[str, Any], where: str) -> list[str]:
    errors = []
    for key, types in keys.items():
        if key not in obj:
            errors.append(f"{where}: missing key {key!r}")
        elif not isinstance(obj[key], types) or (types is int and isinstance(obj[key], bool)):
            errors.append(f"{where}.{key}: expected {types}, got {type(obj[key]).__name__}")
    return errors


def validate_results(obj: Any) -> list[str]:
    """Problems with a parsed results.json (empty list when it conforms to SCHEMA_VERSION)."""
    if not isinstance(obj, dict):
        return ["results: top level must be an object"]
    errors = _check(obj, RESULTS_KEYS, "results.json")
    if obj.get("schema_version") not in (None, SCHEMA_VERSION):
        errors.append(f"results.json: schema_version {obj.get('schema_version')} is not {SCHEMA_VERSION}")
    for key, entry in (obj.get("results") or {}).items():
        if "/" not in key:
            errors.append(f"results[{key!r}]: key must be 'suite/reward'")
        if not isinstance(entry, dict):
            errors.append(f"results[{key!r}]: must be an object")
            continue
        errors += _check(entry, ENTRY_KEYS, f"results[{key!r}]")
        ci = entry.get("ci95")
        if isinstance(ci, list) and (len(ci) != 2 or not all(isinstance(v, (int, float)) for v in ci)):
            errors.append(f"results[{key!r}].ci95: must be [lo, hi]")
    for key in RUN_KEYS:
        if key not in (obj.get("run") or {}):
            errors.append(f"results.json.run: missing key {key!r}")
    return errors


def validate_sample(obj: Any) -> list[str]:
    """Problems with one parsed samples.jsonl line."""
    if not isinstance(obj, dict):
        return ["sample: must be an object"]
    return _check(obj, SAMPLE_KEYS, "sample")
