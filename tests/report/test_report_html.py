"""HTML report: structure (self-contained, every score under every image, controls, A/B view, missing
images as placeholders) and a real headless-Chromium load that checks images and console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rtdmd_bench.report.html_report import write_report
from rtdmd_bench.report.runs import load_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse(text: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Collect()
    parser.feed(text)
    return parser.tags


def test_report_is_self_contained_with_scores_under_every_image(make_run, tmp_path):
    run = make_run("a", rewards=("clipscore", "pickscore", "geneval"))
    out = write_report(load_run(run), tmp_path / "out" / "report.html")
    text = out.read_text()
    tags = parse(text)
    imgs = [a for t, a in tags if t == "img"]
    assert imgs and all(a["src"].startswith("data:image/") for a in imgs)  # no external resource
    assert not [a for t, a in tags if t in ("link", "iframe") or (t == "script" and "src" in a)]
    assert len([a for t, a in tags if t == "figure"]) == 12  # 6 prompts x 2 images
    assert len(re.findall(r"<li>clipscore: ", text)) == 12 and len(re.findall(r"<li>geneval: ", text)) == 12
    assert len([a for t, a in tags if t == "div" and "card" in a.get("class", "")]) == 6
    assert {a.get("id") for t, a in tags} >= {"rb-sort", "rb-order", "rb-tag", "rb-text", "rb-min", "rb-max", "grid",
                                              "rb-status"}
    assert len([a for a in imgs if a.get("data-src-name", "").startswith("chart ")]) == 3


def test_report_link_mode_and_missing_images(make_run, tmp_path):
    run = make_run("a")
    (run / "images/smoke/1_0.png").unlink()
    (run / "images/smoke/2_0.png").write_bytes(b"not a png")
    out = write_report(load_run(run), tmp_path / "elsewhere" / "report.html", images="link")
    text = out.read_text()
    assert "missing:<br>images/smoke/1_0.png" in text and "1 image(s) missing on disk" in text
    srcs = [a["src"] for t, a in parse(text) if t == "img" and not a["src"].startswith("data:")]
    assert srcs and all((out.parent / s).resolve().is_file() for s in srcs)
    embedded = write_report(load_run(run), tmp_path / "embedded.html").read_text()
    assert "unreadable:<br>images/smoke/2_0.png" in embedded


def test_report_compare_mode_shows_a_and_b_for_changed_prompts(make_run, shift, tmp_path):
    a = make_run("a")
    b = make_run("b", score=shift({"pickscore": 1.0}, {2}), training_rewards=["pickscore"])
    text = write_report(load_run(a), tmp_path / "r.html", compare=load_run(b), top=3).read_text()
    assert "Compare: b (B) vs a (A)" in text and "smoke/pickscore: most changed prompts" in text
    assert text.count('class="ab"') == 1 and "A 22." in text and "(gain +1.0000)" in text


def _chromium(args: list[str], tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(make_run, shift, tmp_path):
    a = make_run("a", rewards=("clipscore", "pickscore", "geneval"))
    b = make_run("b", rewards=("clipscore", "pickscore", "geneval"), score=shift({"pickscore": 0.5}, {1, 4}))
    out = write_report(load_run(a), tmp_path / "report.html", compare=load_run(b))
    url = out.resolve().as_uri()
    dom = _chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
                    tmp_path, "dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    status = re.search(r'<div id="rb-status"([^>]*)>', dom.stdout)
    assert status, dom.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', status.group(1)))
    assert attrs["checked"] == "1", "the page's load handler did not run"
    n_imgs = out.read_text().count("<img ")
    assert n_imgs == 2 * 12 + 3 + 2 * 2 * 2  # A and B grids, one chart per reward, prompts 1 and 4 as A|B (2 images)
    assert (attrs["images"], attrs["broken"], attrs["errors"]) == (str(n_imgs), "0", "0"), attrs
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert "6 of 6 prompts shown" in dom.stdout  # the grid script ran
    shot = tmp_path / "report.png"
    snap = _chromium([f"--screenshot={shot}", "--window-size=1280,1600", url], tmp_path, "shot")
    assert snap.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, snap.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_browser_check_detects_a_broken_image(make_run, tmp_path):
    run = make_run("a")
    out = write_report(load_run(run), tmp_path / "r" / "report.html", images="link")
    (run / "images/smoke/0_0.png").write_bytes(b"broken after writing")
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", out.resolve().as_uri()], tmp_path, "broken")
    assert 'data-broken="1"' in dom.stdout and "1 image(s) failed to load: images/smoke/0_0.png" in dom.stdout


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
@pytest.mark.parametrize("view, expected", [
    # per-prompt pickscore means (conftest base_score): 0: 23.03, 1: 22.722, 2: 22.721, 3: 23.39, 4: 22.76,
    # 5: 23.22, 6: 22.71, 7: 22.17, 8: 22.01; tags cycle colors, counting, position.
    ("sort=smoke/pickscore&order=asc&min=22.722", [1, 4, 0, 5, 3]),
    ("sort=smoke/pickscore&order=desc&tag=colors", [3, 0, 6]),
    ("text=number%208", [8]),
])
def test_grid_sorts_and_filters_by_reward_in_the_browser(make_run, tmp_path, view, expected):
    run = make_run("a", n_prompts=9)
    out = write_report(load_run(run), tmp_path / "report.html")
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", out.resolve().as_uri() + "#" + view],
                    tmp_path, "sort").stdout
    cards = re.findall(r'<div class="card( hidden)?" data-order="(\d+)"', dom)
    assert [int(order) for hidden, order in cards if not hidden] == expected
    assert f"{len(expected)} of 9 prompts shown" in dom


def test_large_run_report_inlines_only_the_first_images_and_links_the_rest(make_run, tmp_path):
    run = make_run("big", n_prompts=10, images_per_prompt=3)
    out = write_report(load_run(run), tmp_path / "report.html", max_images=7)
    text = out.read_text()
    tags = parse(text)
    imgs = [a for t, a in tags if t == "img" and not a.get("data-src-name", "").startswith("chart ")]
    assert len(imgs) == 6 and all(a["src"].startswith("data:image/") for a in imgs)  # 2 whole prompts fit in 7
    links = [a["href"] for t, a in tags if t == "a" and a.get("href", "").endswith(".png")]
    assert len(links) == 24 and all((out.parent / h).is_file() for h in links)  # relative to the report
    assert len([a for t, a in tags if t == "div" and "card" in a.get("class", "")]) == 10  # every prompt sortable
    assert "30 images: thumbnails for the first 7" in text


def test_images_outside_the_run_are_never_read(make_run, tmp_path):
    """samples.jsonl is untrusted: an absolute path or ``..`` is shown as outside the run, never embedded/linked."""
    import json

    run = make_run("a")
    secret = tmp_path / "secret.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(secret)
    lines = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    lines[0]["image"], lines[1]["image"] = str(secret), "../../secret.png"
    (run / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for mode in ("embed", "link"):
        text = write_report(load_run(run), tmp_path / f"r-{mode}.html", images=mode).read_text()
        assert text.count("image outside the run, not loaded") == 2
        assert "secret.png" not in " ".join(a.get("src", "") for t, a in parse(text) if t == "img")


def test_a_suite_manifest_cannot_point_outside_its_folder(tmp_path):
    from rtdmd_bench.suites.manifest import read_manifest

    outside = tmp_path / "outside.txt"
    outside.write_text("a prompt\n")
    folder = tmp_path / "prompts" / "mine"
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text("name: mine\nformat: txt\nfile: ../../outside.txt\nn_prompts: 1\n")
    assert read_manifest(folder / "suite.yaml").installed_path() is None


def test_tiny_banner_and_both_grids_in_compare_mode(make_run, tmp_path):
    a, b = make_run("a", tiny=True), make_run("b", tiny=True)
    text = write_report(load_run(a), tmp_path / "r.html", compare=load_run(b)).read_text()
    assert "TINY RANDOM WEIGHTS (a, b)" in text and text.count("(TINY RANDOM WEIGHTS)") == 2
    assert 'id="grid"' in text and 'id="grid-b"' in text and "Images of b (B)" in text
    real = write_report(load_run(make_run("c")), tmp_path / "c.html").read_text()
    assert "TINY RANDOM WEIGHTS" not in real and 'id="grid-b"' not in real
