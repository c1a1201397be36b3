"""GenEval adapter: tiny random Mask2Former + open_clip colour classifier through the production loader, the
RGB / mask-compositing crop with fake backends, the summary wiring, and the full-size detector architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtdmd_bench.rewards import REWARDS, build
from rtdmd_bench.rewards.base import RewardInputError
from rtdmd_bench.rewards.geneval import GENEVAL_OBJECTS, GenEval, composite_crop, geneval_class_names
from rtdmd_bench.rewards.geneval_rules import COLORS, TAGS, Detection, geneval_summary

META = [
    {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
    {"tag": "color_attr", "include": [{"class": "dog", "count": 1, "color": "red"},
                                      {"class": "cat", "count": 1, "color": "blue"}], "prompt": "a red dog and a blue cat"},
]


def _rigged(reward_root) -> GenEval:
    """The tiny detector with every query voting "dog" (class bias) so the verdicts are known: dog found, no cat."""
    reward = build("geneval", weights=reward_root)
    names = reward.detector.class_names
    with torch.no_grad():
        head = reward.detector.model.class_predictor
        head.weight.zero_()
        head.bias.fill_(-20.0)
        head.bias[names.index("dog")] = 20.0
    return reward


def test_spec_is_available_with_official_headline():
    spec = REWARDS.spec("geneval")
    assert spec.needs_metadata and not spec.differentiable
    assert spec.units == "correct (0/1)" and spec.headline == "macro_over_tags"
    assert REWARDS.spec("clipscore").headline == "mean"


def test_tiny_detector_end_to_end(reward_root):
    reward = _rigged(reward_root)
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    out = reward(images, None, META)
    assert out.scores.tolist() == [1.0, 0.0] and out.valid.all()
    assert out.extras["correct"] == [True, False] and out.extras["tag"] == ["single_object", "color_attr"]
    assert out.extras["reason"][0] == "" and "cat" in out.extras["reason"][1]
    assert set(out.parts) == {"strict"} and out.parts["strict"][1] == 0.0
    # the colour classifier ran on the dog crop: its prediction is one of the 10 colours
    raw = reward.detector([np.zeros((64, 96, 3), np.uint8)])[0]
    dog = sorted(raw["dog"], key=lambda d: -d.score)[0]
    assert reward.colours(np.zeros((64, 96, 3), np.uint8), "dog", [dog])[0] in COLORS
    assert reward.colours.classifier("dog").shape[1] == len(COLORS)


def test_untouched_tiny_detector_scores_zero_or_one(built):
    out = built("geneval")(torch.rand(2, 3, 64, 64), None, META)
    assert set(out.scores.tolist()) <= {0.0, 1.0} and len(out.extras["reason"]) == 2


def test_detections_follow_mmdet_postprocess(reward_root):
    reward = _rigged(reward_root)
    raw = reward.detector([np.full((48, 80, 3), 128, np.uint8)])[0]
    dets = [d for ds in raw.values() for d in ds]
    assert len(dets) == min(100, 10 * 80)  # top-100 query x class pairs (tiny model: 10 queries)
    for d in dets:
        assert d.mask.shape == (48, 80) and d.mask.dtype == bool and 0.0 <= d.score <= 1.0
        if d.mask.any():
            ys, xs = np.nonzero(d.mask)
            assert d.box == (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0)


def test_metadata_is_required(built):
    with pytest.raises(RewardInputError, match="metadata"):
        built("geneval")(torch.rand(1, 3, 32, 32), None, None)
    with pytest.raises(RewardInputError, match="include"):
        built("geneval")(torch.rand(1, 3, 32, 32), None, [{"tag": "single_object"}])


def test_rgb_reaches_detector_and_crop_is_masked_over_grey():
    """Fake detector records what it got (RGB uint8 HWC, no BGR swap: the HF model is detectron2's, RGB);
    the fake colour backend records the composited crop."""
    got, crops = [], []
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True

    def detector(arrays):
        got.extend(arrays)
        return [{"apple": [Detection(box=(2.0, 1.0, 8.0, 6.0), score=0.95, mask=mask)]} for _ in arrays]

    def colours(image, name, dets):
        crops.extend(composite_crop(image, d) for d in dets)
        return ["red"] * len(dets)

    reward = GenEval.__new__(GenEval)
    torch.nn.Module.__init__(reward)
    reward.detector, reward.colours = detector, colours
    image = torch.zeros(1, 3, 8, 10)
    image[0, 0] = 1.0  # pure red
    meta = [{"tag": "colors", "include": [{"class": "apple", "count": 1, "color": "red"}]}]
    out = reward(image, None, meta)
    assert out.scores.tolist() == [1.0]
    assert got[0].dtype == np.uint8 and got[0].shape == (8, 10, 3)
    assert (got[0][..., 0] == 255).all() and (got[0][..., 1:] == 0).all()  # channel 0 is red: RGB
    crop = crops[0]
    assert crop.shape == (5, 6, 3)  # rows 1..5, cols 2..7 of the bbox
    inside = mask[1:6, 2:8]
    assert (crop[inside] == [255, 0, 0]).all() and (crop[~inside] == 153).all()  # #999 outside the mask


def test_class_names_map_detectron2_spellings():
    hf = {i: {"computer mouse": "mouse", "tv remote": "remote", "computer keyboard": "keyboard"}.get(n, n)
          for i, n in enumerate(GENEVAL_OBJECTS)}
    assert geneval_class_names(hf) == list(GENEVAL_OBJECTS)
    with pytest.raises(ValueError, match="not one of"):
        geneval_class_names({**hf, 3: "unicorn"})


def test_summary_macro_overall_from_extras():
    records = [{"tag": t, "correct": c, "prompt": f"{t}{i}"} for t in TAGS for i, c in enumerate([1, 0, 0, 0])]
    records += [{"tag": "single_object", "correct": 1, "prompt": "extra"}] * 4
    s = geneval_summary(records)
    assert s["overall"] == pytest.approx(sum(s["per_tag"].values()) / 6) and s["overall"] != s["image_accuracy"]
    assert s["per_tag"]["single_object"] == pytest.approx(5 / 8) and not s["missing_tags"]


def test_full_size_mask2former_swin_s_coco_on_meta():
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    swin = SwinConfig(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=7,
                      out_features=["stage1", "stage2", "stage3", "stage4"])
    with torch.device("meta"):
        model = Mask2FormerForUniversalSegmentation(Mask2FormerConfig(backbone_config=swin, num_labels=80))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert params == pytest.approx(68.7, abs=0.1)  # mmdet model zoo: 69M for Mask2Former Swin-S COCO instance
    assert model.class_predictor.out_features == 81 and model.config.num_queries == 100
