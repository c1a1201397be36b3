"""GenEval2 Soft-TIFA on a tiny random Qwen3-VL in the production layout: the answer variants and means by hand,
the batched path (one vision encoding per image, one LM forward) against the per-question reference path and
against ``generate``'s first-step scores, invalid samples, options."""

from __future__ import annotations

import math

import pytest
import torch

from rtdmd_bench.rewards.geneval2 import answer_variants, geometric_mean, vqa_list_of

META = [
    {"vqa_list": [["How many cats are in the image?", "two"], ["Are the cats red?", "Yes"],
                  ["Are there any cats in the image?", "Yes"]], "skills": ["count", "attribute", "object"]},
    {"vqa_list": [["Are there any dogs in the image?", "Yes"]], "skills": ["object"]},
    {"vqa_list": [["How many bicycles are in the image?", "seven"], ["Is the dog left of the bicycles?", "Yes"]],
     "skills": ["count", "position"]},
]


def test_answer_variants_as_geneval2():
    assert answer_variants("How many cats are in the image?", "two") == ["two", "Two", " two", " Two", "2", " 2"]
    assert answer_variants("How many cats are in the image?", "many")[-2:] == ["other", " other"]
    assert answer_variants("Are the cats red?", "Yes") == ["Yes", "yes", " yes", " Yes"]


def test_means_by_hand():
    assert geometric_mean([0.25, 1.0]) == pytest.approx(0.5) and geometric_mean([0.9, 0.0, 0.5]) == 0.0
    assert geometric_mean([0.2, 0.4, 0.8]) == pytest.approx(0.4)
    assert vqa_list_of({"tag": "colors"})[0] is None and "vqa_list" in vqa_list_of({"tag": "colors"})[1]
    assert "malformed" in vqa_list_of({"vqa_list": [["only a question"]]})[1]


@pytest.fixture(scope="module")
def pair(reward_root):
    from rtdmd_bench.rewards import build

    batched = build("geneval2", weights=reward_root, options={"max_pairs": 4})  # 6 pairs -> 2 forwards
    per_question = build("geneval2", weights=reward_root, options={"batched": False})
    return batched, per_question


def test_batched_equals_per_question(pair, smooth):
    batched, per_question = pair
    images = smooth(3, 96, 128, seed=11)
    before = batched.forwards, per_question.forwards
    a = batched(images, None, META)
    b = per_question(images, None, META)
    assert batched.forwards - before[0] == 2 and per_question.forwards - before[1] == 6
    flat_a = [s for atoms in a.extras["atom_scores"] for s in atoms]
    flat_b = [s for atoms in b.extras["atom_scores"] for s in atoms]
    assert len(flat_a) == 6 and max(abs(x - y) for x, y in zip(flat_a, flat_b)) <= 1e-5
    assert torch.allclose(a.scores, b.scores, atol=1e-6) and a.valid.all()
    for atoms, gm, am in zip(a.extras["atom_scores"], a.parts["soft_tifa_gm"], a.parts["soft_tifa_am"]):
        assert float(gm) == pytest.approx(math.exp(sum(map(math.log, atoms)) / len(atoms)), rel=1e-5)
        assert float(am) == pytest.approx(sum(atoms) / len(atoms), rel=1e-5)
    assert torch.equal(a.scores, a.parts["soft_tifa_gm"])
    assert a.extras["breakdown"][0] == {"skill": {"count": [flat_a[0]], "attribute": [flat_a[1]], "object": [flat_a[2]]}}


def test_atom_is_the_generate_first_step_probability_of_the_answer_tokens(pair, smooth):
    """The reference calls generate(max_new_tokens=1, output_scores=True) and softmaxes scores[0]."""
    from PIL import Image

    _, reward = pair
    image = Image.fromarray((smooth(1, 64, 64, seed=2)[0] * 255).round().byte().permute(1, 2, 0).numpy())
    question, answer = "How many cats are in the image?", "two"
    messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                             {"type": "text", "text": f"{question} Answer in one word."}]}]
    inputs = reward.processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                  return_dict=True, return_tensors="pt")
    out = reward.model.generate(**inputs, max_new_tokens=1, do_sample=False, output_scores=True,
                                return_dict_in_generate=True)
    probs = out.scores[0].float().softmax(-1)[0]
    tok = reward.tokenizer
    expected = sum(float(probs[tok.encode(v, add_special_tokens=False)[0]]) for v in answer_variants(question, answer))
    assert reward.atoms_per_question(image, [(question, answer)])[0] == pytest.approx(expected, abs=1e-6)


def test_prompt_without_vqa_metadata_is_an_invalid_sample(pair, smooth):
    batched, _ = pair
    out = batched(smooth(3, 64, 64, seed=5), None, [META[1], {"tag": "colors"}, {"vqa_list": "Are cats red?"}])
    assert out.valid.tolist() == [True, False, False]
    assert "no GenEval2 vqa_list" in out.extras["reason"][1] and "malformed" in out.extras["reason"][2]
    assert out.extras["reason"][0] == "" and out.extras["breakdown"][1] == {}


def test_arithmetic_mean_option_changes_score_version_and_units(reward_root, pair, smooth):
    from rtdmd_bench.rewards import build, reward_identity

    am = build("geneval2", weights=reward_root, options={"aggregation": "am"})
    images = smooth(3, 64, 64, seed=6)
    out = am(images, None, META)
    assert torch.equal(out.scores, out.parts["soft_tifa_am"])
    assert reward_identity("geneval2", reward_root, {"aggregation": "am"})["units"] == "arithmetic mean of VQA probs"
    gm = reward_identity("geneval2", reward_root, {})
    assert gm["units"] == "geometric mean of VQA probs" and gm["version"] == "soft-tifa-gm-qwen3vl8b-1"
