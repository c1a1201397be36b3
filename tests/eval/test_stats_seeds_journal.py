import json

import numpy as np
import pytest

from rtdmd_bench.eval.journal import Journal, load_all, merge_records, read_jsonl, write_samples
from rtdmd_bench.seeds import item_seed
from rtdmd_bench.stats import bootstrap_ci, summarize


def test_item_seed_depends_only_on_item_identity():
    s = item_seed("smoke@1", 3, 0, 7)
    assert s == item_seed("smoke@1", 3, 0, 7)
    others = {item_seed("smoke@2", 3, 0, 7), item_seed("smoke@1", 4, 0, 7), item_seed("smoke@1", 3, 1, 7),
              item_seed("smoke@1", 3, 0, 8)}
    assert s not in others and len(others) == 4
    assert 0 <= s < 2**63


def test_bootstrap_ci_deterministic_and_covers_mean():
    rng = np.random.default_rng(0)
    groups = [list(rng.normal(1.0, 0.5, size=4)) for _ in range(50)]
    ci = bootstrap_ci(groups, 500, seed=3)
    assert ci == bootstrap_ci(groups, 500, seed=3)
    mean = np.mean(np.concatenate(groups))
    assert ci[0] < mean < ci[1] and ci[1] - ci[0] < 0.5


def test_bootstrap_resamples_prompts_not_images():
    # 2 prompts with identical images inside each: spread comes only from the prompt level.
    groups = [[0.0] * 10, [1.0] * 10]
    lo, hi = bootstrap_ci(groups, 2000, seed=0)
    assert lo == 0.0 and hi == 1.0
    assert bootstrap_ci([[1.0, 2.0]], 100) is None


def test_summarize_hand_computed():
    s = summarize([[1.0, 3.0], [], [5.0]], 100, 0)
    assert s["mean"] == 3.0 and s["n"] == 3 and s["n_prompts"] == 2
    assert s["std"] == pytest.approx(np.std([1.0, 3.0, 5.0]))


def rec(pid, k, sha="a", **scores):
    return {"suite": "s", "prompt_id": pid, "sample_idx": k, "image_sha256": sha, "scores": scores,
            "valid": {n: True for n in scores}, "parts": {}, "extras": {}}


def test_merge_unions_scores_and_new_image_replaces():
    merged = merge_records([rec(0, 0, x=1.0), rec(0, 0, y=2.0), rec(1, 0, x=3.0), rec(1, 0, "b", x=4.0)])
    assert merged[("s", 0, 0)]["scores"] == {"x": 1.0, "y": 2.0}
    assert merged[("s", 1, 0)]["scores"] == {"x": 4.0}


def test_journal_survives_truncated_last_line(tmp_path):
    j = Journal(tmp_path / "journal" / "rank-0.jsonl")
    j.append(rec(0, 0, x=1.0))
    j.append(rec(1, 0, x=2.0))
    j.close()
    path = tmp_path / "journal" / "rank-0.jsonl"
    with open(path, "ab") as fh:  # a SIGKILL mid-write
        fh.write(b'{"suite": "s", "prompt_id": 2, "sa')
    assert [r["prompt_id"] for r in read_jsonl(path)] == [0, 1]
    j = Journal(path)  # repairs, then appends on a fresh line
    j.append(rec(2, 0, x=3.0))
    j.close()
    assert [r["prompt_id"] for r in read_jsonl(path)] == [0, 1, 2]
    write_samples(tmp_path, load_all(tmp_path))
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert [json.loads(x)["prompt_id"] for x in lines] == [0, 1, 2]
    assert not path.exists()


def test_corrupt_middle_line_is_an_error_with_line_number(tmp_path):
    p = tmp_path / "samples.jsonl"
    p.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match=r"samples.jsonl:2: corrupt JSON"):
        list(read_jsonl(p))


def test_journal_repair_reads_only_the_tail_and_handles_long_lines(tmp_path):
    path = tmp_path / "rank-0.jsonl"
    long = json.dumps(rec(0, 0, x=1.0) | {"prompt": "p" * 200_000})
    path.write_bytes((long + "\n").encode() + long[:100_001].encode())  # a > 64 KiB line cut mid-write
    j = Journal(path)
    j.append(rec(1, 0, x=2.0))
    j.close()
    assert [r["prompt_id"] for r in read_jsonl(path, strict=True)] == [0, 1]


def test_merge_into_extends_an_earlier_merge():
    merged = merge_records([rec(0, 0, x=1.0)])
    out = merge_records([rec(0, 0, y=2.0), rec(1, 0, x=3.0)], into=merged)
    assert out is merged and out[("s", 0, 0)]["scores"] == {"x": 1.0, "y": 2.0} and len(out) == 2


def test_resampling_in_row_chunks_is_bit_identical(monkeypatch):
    """The bootstrap / sign-flip matrices are drawn in row blocks (bounded memory): every statistic must equal
    the one-matrix computation exactly, because numpy Generators continue the same stream across calls."""
    import rtdmd_bench.stats as stats
    from rtdmd_bench.report.paired import paired_bootstrap, sign_flip_pvalue
    from rtdmd_bench.stats import macro_bootstrap_ci

    rng = np.random.default_rng(1)
    diffs = rng.normal(size=301)
    groups = [list(rng.normal(size=rng.integers(1, 5))) for _ in range(301)]

    def everything():
        return (paired_bootstrap(diffs, 500, 3), sign_flip_pvalue(np.round(diffs, 1), 700, 4),
                bootstrap_ci(groups, 400, 5), macro_bootstrap_ci([groups[:150], groups[150:]], 300, 6))

    whole = everything()
    monkeypatch.setattr(stats, "CHUNK_ELEMENTS", 1000)  # ~3 rows per block, odd sizes included
    assert everything() == whole
