"""OCR throughput on the real shipped PP-OCR models, and GenEval2 batched vs per-question scoring (pytest-benchmark).

Run: ``.venv/bin/pytest benchmarks/test_paper_metrics_bench.py --benchmark-only -s``. The OCR tests print
images/s at 512x512 and 1024x1024 (onnxruntime on every core the machine has); the GenEval2 test checks that
both paths give the same atom probabilities (<= 1e-5) and prints the per-question / batched time ratio and the
language-model forwards and vision encodings each path runs.
"""

from __future__ import annotations

import pytest
import torch
from timing import min_time

SIGN_TEXTS = ["OPEN 24 HOURS", "Fresh Bakery", "Hello World", "SALE 50% OFF"]
G2_META = [
    {"vqa_list": [["How many bicycles are in the image?", "four"], ["Are the bicycles white?", "Yes"],
                  ["Are there any bicycles in the image?", "Yes"], ["Are the bicycles in front of the cows?", "Yes"],
                  ["How many cows are in the image?", "three"], ["Are the cows plastic?", "Yes"],
                  ["Are there any cows in the image?", "Yes"]],
     "skills": ["count", "attribute", "object", "position", "count", "attribute", "object"]},
] * 4  # 4 images x 7 questions (the GenEval2 mean is 7.1 questions per prompt)


def _sign(text: str, size: int, seed: int) -> torch.Tensor:
    """A rendered sign on a smooth textured background, like a generated image with text."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(3, 6, 6, generator=g) * 0.5 + 0.25
    bg = torch.nn.functional.interpolate(low[None], size=(size, size), mode="bicubic", align_corners=False)[0]
    img = Image.fromarray((bg.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size // 10)
    draw.rectangle((size // 8, size // 3, size * 7 // 8, size * 2 // 3), fill=(245, 240, 225))
    draw.text((size // 6, size * 4 // 9), text, fill=(30, 30, 30), font=font)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


@pytest.fixture(scope="module")
def ocr(tmp_path_factory):
    from rtdmd_bench.rewards import build

    return build("ocr", weights=tmp_path_factory.mktemp("no-weights-needed"))


@pytest.mark.parametrize("size", [512, 1024])
def test_ocr_images_per_second(benchmark, ocr, size):
    images = torch.stack([_sign(t, size, i) for i, t in enumerate(SIGN_TEXTS)])
    prompts = [f'a shop sign that says "{t}"' for t in SIGN_TEXTS]
    out = benchmark.pedantic(lambda: ocr(images, prompts), rounds=2, iterations=1, warmup_rounds=1)
    per_s = len(SIGN_TEXTS) / benchmark.stats.stats.min
    benchmark.extra_info["images_per_s"] = per_s
    print(f"\nOCR {size}x{size}: {per_s:.2f} images/s ({torch.get_num_threads()} torch threads; mean reward "
          f"{out.scores.mean():.3f})")
    assert out.valid.all()


@pytest.fixture(scope="module")
def geneval2_pair(tmp_path_factory):
    from rtdmd_bench.rewards import build
    from rtdmd_bench.rewards.tiny_vl import write_tiny_geneval2

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("g2-weights")
    write_tiny_geneval2(root)
    return build("geneval2", weights=root), build("geneval2", weights=root, options={"batched": False})


def _g2_images():
    g = torch.Generator().manual_seed(0)
    low = torch.rand(len(G2_META), 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(256, 256), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("mode", ["batched", "per_question"])
def test_geneval2_scoring(benchmark, geneval2_pair, mode):
    reward = geneval2_pair[0 if mode == "batched" else 1]
    images = _g2_images()
    benchmark.pedantic(lambda: reward(images, None, G2_META), rounds=3, iterations=1, warmup_rounds=1)


def test_geneval2_batched_equals_per_question_and_wins(geneval2_pair):
    batched, per_question = geneval2_pair
    images = _g2_images()
    a, b = batched(images, None, G2_META), per_question(images, None, G2_META)
    diff = max(abs(x - y) for xa, xb in zip(a.extras["atom_scores"], b.extras["atom_scores"]) for x, y in zip(xa, xb))
    n_pairs = sum(len(m["vqa_list"]) for m in G2_META)
    f0, f1 = batched.forwards, per_question.forwards
    t_batched = min_time(lambda: batched(images, None, G2_META), 3)
    t_question = min_time(lambda: per_question(images, None, G2_META), 3)
    lm_batched, lm_question = (batched.forwards - f0) // 3, (per_question.forwards - f1) // 3
    print(f"\nGenEval2 on {len(G2_META)} images x {n_pairs // len(G2_META)} questions (tiny Qwen3-VL, CPU): "
          f"max |atom diff| {diff:.1e}; per-question {t_question * 1e3:.0f} ms ({lm_question} LM forwards, "
          f"{n_pairs} vision encodings) vs batched {t_batched * 1e3:.0f} ms ({lm_batched} LM forward, "
          f"{len(G2_META)} vision encodings): {t_question / t_batched:.1f}x")
    assert diff <= 1e-5 and lm_question == n_pairs and lm_batched == 1
    assert t_question / t_batched > 1.0
