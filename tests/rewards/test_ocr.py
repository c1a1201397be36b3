"""OCR reward: the reference formula by hand, and the REAL PP-OCRv6 models shipped in the rapidocr wheel reading
strings rendered with Pillow (no tiny weights: these numbers come from the published detector/recogniser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtdmd_bench.rewards.ocr import ocr_distance, ocr_reward, quoted_target

FONTS = Path("/usr/share/fonts/truetype/dejavu")


@pytest.mark.parametrize("prompt, target", [
    ('a sign that says "Hello World"', "Hello World"),
    ('"OPEN" and "CLOSED"', "OPEN"),               # first pair only, as prompt.split('"')[1]
    ('a "" sign', ""),
    ('one quote " only', None),
    ("no quotes", None),
])
def test_quoted_target(prompt, target):
    assert quoted_target(prompt) == target


def test_formula_by_hand():
    # substring after removing spaces and lower-casing -> distance 0
    assert ocr_reward("SALE! Hello  World 50%", "hello world") == 1.0
    # "helowrld" vs "helloworld": two deletions -> 1 - 2/10
    assert ocr_distance("Helo Wrld", "Hello World") == 2 and ocr_reward("Helo Wrld", "Hello World") == pytest.approx(0.8)
    # distance capped at the target length: a long unrelated text scores 0, not below
    assert ocr_distance("x" * 40, "cat") == 3 and ocr_reward("x" * 40, "cat") == 0.0
    assert ocr_reward("", "cat") == 0.0
    with pytest.raises(ValueError, match="empty"):
        ocr_reward("abc", "  ")


def _render(text: str, size=(448, 448), font="DejaVuSans.ttf", px=44, fg=(20, 20, 20), bg=(236, 226, 206),
            angle=0.0) -> torch.Tensor:
    from PIL import Image, ImageDraw, ImageFont

    w, h = size
    img = Image.new("RGB", (w, h), bg)
    face = ImageFont.truetype(str(FONTS / font), px) if (FONTS / font).is_file() else ImageFont.load_default(px)
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((0, 0), text, font=face)
    draw.text(((w - box[2]) // 2, (h - box[3]) // 2), text, fill=fg, font=face)
    if angle:
        img = img.rotate(angle, resample=Image.BICUBIC, fillcolor=bg)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


# (rendered text, prompt, expected reward): clean renderings must read exactly; the misspelt one scores what
# the formula gives for the misspelling; the blank image reads nothing.
CASES = [
    (dict(text="Hello World"), 'a shop sign that says "Hello World"', 1.0),
    (dict(text="OPEN 24 HOURS", font="DejaVuSerif-Bold.ttf", px=30), 'neon "OPEN 24 HOURS"', 1.0),
    (dict(text="Coffee Shop", angle=7.0, font="DejaVuSansMono.ttf"), 'a mug printed with "Coffee Shop"', 1.0),
    (dict(text="Low Contrast", fg=(150, 140, 120), bg=(190, 180, 160)), 'a poster "Low Contrast"', 1.0),
    (dict(text="Helo Wrld"), 'a sign "Hello World"', 1.0 - 2 / 10),
    (dict(text=""), 'a sign "Nothing Here"', 0.0),
]


@pytest.fixture(scope="module")
def ocr_out(reward_root):
    from rtdmd_bench.rewards import build

    reward = build("ocr", weights=reward_root)
    images = torch.stack([_render(**kw) for kw, _, _ in CASES])
    return reward, reward(images, [p for _, p, _ in CASES])


def test_real_models_read_rendered_text(ocr_out):
    _, out = ocr_out
    expected = torch.tensor([e for _, _, e in CASES])
    assert out.valid.all(), out.extras["reason"]
    assert torch.allclose(out.scores, expected, atol=1e-6), list(zip(out.extras["recognised"], out.scores.tolist()))
    assert out.extras["recognised"][0] == "helloworld" and out.extras["recognised"][-1] == ""
    assert out.parts["edit_distance"].tolist()[4] == 2.0


def test_prompt_without_quotes_is_an_invalid_sample(ocr_out):
    reward, _ = ocr_out
    wide = _render("Hello", size=(512, 256), px=56)[None].repeat(2, 1, 1, 1)  # non-square input
    out = reward(wide, ["a sign that says hello", 'a sign "Hello"'])
    assert out.valid.tolist() == [False, True]
    assert out.extras["reason"][0] == "no quoted text in the prompt" and out.extras["reason"][1] == ""
    assert torch.isnan(out.scores[0]) and out.scores[1] == 1.0


def test_identity_records_the_shipped_model_files_and_their_published_sha256(reward_root):
    """The sha256 results.json records equals the one RapidOCR's own model table publishes for these files."""
    import rapidocr
    import yaml

    from rtdmd_bench.rewards import reward_identity

    info = reward_identity("ocr", reward_root, {})
    assert info["version"] == "ocr-ppocr-1/ppocrv6-small" and info["options"]["text_score"] == 0.5
    published = {}

    def walk(node):
        if isinstance(node, dict):
            if "model_dir" in node and "SHA256" in node:
                published[Path(str(node["model_dir"])).name] = node["SHA256"]
            for value in node.values():
                walk(value)

    walk(yaml.safe_load((Path(rapidocr.__file__).parent / "default_models.yaml").read_text())["onnxruntime"])
    assert {f["name"]: f["sha256"] for f in info["files"]} == {n: published[n] for n in
                                                                ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx")}


def test_model_option_selects_fetched_files_and_names_the_fix(tmp_path):
    from rtdmd_bench.rewards import RewardOptionsError, build
    from rtdmd_bench.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError) as info:
        build("ocr", weights=tmp_path, options={"model": "ppocrv4-en"})
    msg = str(info.value)
    assert "ocr/ppocrv4-en/en_PP-OCRv4_rec_mobile.onnx" in msg and "rtdmd-bench weights fetch ocr" in msg
    with pytest.raises(RewardOptionsError, match="unknown OCR model 'paddle'"):
        build("ocr", weights=tmp_path, options={"model": "paddle"})
    with pytest.raises(RewardOptionsError, match="unknown option"):
        from rtdmd_bench.rewards import check_option_names

        check_option_names("ocr", {"lang": "en"})


def test_fetch_urls_offline_is_a_clear_error(tmp_path, network_attempts):
    from rtdmd_bench.rewards.fetch import WeightsFetchError, fetch_reward_weights, verify_weights

    with pytest.raises(WeightsFetchError, match="en_PP-OCRv3_det_mobile.onnx"):
        fetch_reward_weights("ocr", tmp_path)
    assert network_attempts and not list(tmp_path.rglob("*.onnx"))
    checks = verify_weights(tmp_path, ["ocr"])
    assert {c.status for c in checks} == {"absent (optional)"} and all(c.ok for c in checks)
