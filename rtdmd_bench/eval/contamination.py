"""Train/test contamination: which evaluated suites share prompts with the model's training prompts.

A LoRA exported by ``rtdmd-bench train`` carries ``training.json`` whose ``prompts.hashes_file`` names a file beside it
with one ``suites.prompt_hash`` per training prompt (``training.session.prompts_record``). Evaluating that LoRA on a
suite with any of those prompts marks the suite and each of its results ``trained_on_prompts`` in results.json;
compare and leaderboard print the flag "trained on these prompts".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FLAG = "trained on these prompts"
_HASH = re.compile(r"^[0-9a-f]{16}$")
MAX_HASH_FILE_BYTES = 64 << 20  # 64 MiB ~ 3.8 M prompts: a larger file is not one of ours


def training_prompt_hashes(training: Mapping[str, Any]) -> set[str] | None:
    """The prompt hashes recorded by one LoRA's ``training.json`` (as copied into results.json ``model.lora[i]
    .training``, with its ``path``); None when it records none or the file is missing or malformed.

    The file is untrusted: only a bare file name beside training.json is read, and only well-formed hash lines count.
    """
    name = str(((training.get("prompts") or {}).get("hashes_file")) or "")
    where = training.get("path")
    if not name or not where or Path(name).name != name or name.startswith("."):
        return None
    path = Path(str(where)).parent / name
    if not path.is_file() or path.stat().st_size > MAX_HASH_FILE_BYTES:
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").split()
    return {h for h in lines if _HASH.match(h)} or None


def trained_on(suite_prompts: Mapping[str, Iterable[str]], model_info: Mapping[str, Any]) -> dict[str, dict]:
    """``{suite: {"n_overlap", "n_prompts", "loras": [training.json paths], "allow_test_prompts"}}`` for each suite
    whose prompts overlap any LoRA's training prompts (suites without overlap are absent).

    Args:
        suite_prompts: suite name -> the prompt texts evaluated.
        model_info: results.json ``model`` (``lora``: ``[{..., "training": {...}}]``).
    """
    from rtdmd_bench.suites import prompt_hash

    recorded = []
    for rec in model_info.get("lora") or []:
        training = (rec or {}).get("training") or {}
        hashes = training_prompt_hashes(training)
        if hashes:
            recorded.append((hashes, training))
    out = {}
    for suite, prompts in suite_prompts.items():
        mine = {prompt_hash(p) for p in prompts}
        hits = [(mine & h, t) for h, t in recorded if mine & h]
        if hits:
            out[suite] = {"n_overlap": len(set().union(*(h for h, _ in hits))), "n_prompts": len(mine),
                          "loras": [str(t.get("path")) for _, t in hits],
                          "allow_test_prompts": any(bool((t.get("prompts") or {}).get("allow_test_prompts"))
                                                    for _, t in hits)}
    return out
