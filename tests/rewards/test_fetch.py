"""weights fetch (offline error path only) and verify."""

from __future__ import annotations

import pytest

from rtdmd_bench.rewards.fetch import WeightsFetchError, fetch_reward_weights, verify_weights


def test_fetch_offline_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsFetchError, match="network"):
        fetch_reward_weights("aesthetic", tmp_path)


def test_verify_reports_missing_and_checksums(reward_root, tmp_path):
    checks = {(c.reward, c.path): c for c in verify_weights(reward_root)}
    assert checks[("clipscore", "clip-vit-large-patch14")].ok
    # tiny weights are not the published files: known checksums must flag them
    assert checks[("aesthetic", "aesthetic/sac+logos+ava1-l14-linearMSE.pth")].status == "size mismatch"
    assert checks[("hpsv2", "hpsv2/HPS_v2.1_compressed.pt")].status == "size mismatch"
    assert checks[("imagereward", "imagereward/ImageReward.pt")].status == "sha256 mismatch"
    missing = verify_weights(tmp_path, ["pickscore"])
    assert {c.status for c in missing} == {"missing"} and "weights fetch pickscore" in missing[0].detail
