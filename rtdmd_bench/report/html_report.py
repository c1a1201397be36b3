"""One static, self-contained HTML file per run: summary, plots, a sortable image grid, optional A/B view.

Images are either embedded as base64 thumbnails (the file works anywhere, e.g. as a CI artifact) or
linked relatively to the run's PNGs (small file, must stay next to the run). A missing or unreadable
image becomes a visible placeholder and is listed at the top; it never aborts the report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from rtdmd_bench.report import fmt
from rtdmd_bench.report.compare import Comparison, PromptDiff, compare_runs
from rtdmd_bench.report.html_assets import CSS, JS
from rtdmd_bench.report.plots import reward_figure
from rtdmd_bench.report.runs import Run, valid_score

esc = html.escape


class _Images:
    """Turns run images into <img> tags (embedded thumbnails or relative links), caching thumbnails."""

    def __init__(self, out: Path, mode: str, thumb: int):
        self.out_dir = out.resolve().parent
        self.mode = mode
        self.thumb = thumb
        self.cache: dict[Path, str | None] = {}

    def _data_uri(self, path: Path) -> str | None:
        if path not in self.cache:
            from PIL import Image

            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    img.thumbnail((self.thumb, self.thumb))
                    buf = io.BytesIO()
                    img.save(buf, format="JPEG", quality=85)
                self.cache[path] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
            except (OSError, ValueError):
                self.cache[path] = None  # unreadable or corrupt PNG: shown as a placeholder
        return self.cache[path]

    def tag(self, run: Run, rel: str) -> str:
        path = run.image_path({"image": rel})
        if path is None:
            return f'<div class="missing">image outside the run, not loaded:<br>{esc(rel)}</div>'
        if not path.is_file():
            return f'<div class="missing">missing:<br>{esc(rel)}</div>'
        if self.mode == "link":
            src = Path(os.path.relpath(path.resolve(), self.out_dir)).as_posix()
        else:
            src = self._data_uri(path)
            if src is None:
                return f'<div class="missing">unreadable:<br>{esc(rel)}</div>'
        return f'<img src="{esc(src)}" alt="{esc(rel)}" data-src-name="{esc(rel)}" loading="eager">'


def _summary_table(run: Run) -> str:
    head = ["suite/reward", "dir", "version", "units", "headline", "mean ± 95% CI", "n", "prompts", "invalid",
            "macro over tags", "prompt-level"]
    rows = []
    for key in sorted(run.entries):
        e = run.entries[key]
        rows.append([key, fmt.arrow(e["higher_is_better"]), e["reward_version"], e["units"], e["headline"],
                     fmt.fmt_mean_ci(e["mean"], e.get("ci95")), e["n"], e["n_prompts"], e["n_invalid"],
                     fmt.fmt_num(e.get("macro_over_tags")), fmt.fmt_num(e.get("prompt_level"))])
    return _table(head, rows)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join(out + ["</tbody></table>"])


def _run_meta(run: Run) -> str:
    m, r = run.model, run.results.get("run") or {}
    items = [("model", run.model_name), ("tiny weights", run.tiny), ("NFE", m.get("nfe")),
             ("guidance", m.get("guidance")), ("resolution", f"{m.get('height')}x{m.get('width')}"),
             ("seed", run.seed),
             ("images/s", "–" if r.get("images_per_s") is None else f"{r['images_per_s']:.2f}"), ("git", run.results.get("git_hash")),
             ("suites", ", ".join(sorted(run.results.get("suites") or {})))]
    return '<p class="meta">' + " · ".join(f"<b>{esc(k)}</b>: {esc(str(v))}" for k, v in items) + "</p>"


def _score_list(run: Run, sample: dict[str, Any], keys: list[str]) -> str:
    items = []
    for key in keys:
        reward = key.split("/", 1)[1]
        v = valid_score(sample, reward)
        items.append(f"<li>{esc(reward)}: {esc(fmt.fmt_num(v) if v is not None else 'invalid')}</li>")
    return '<ul class="scores">' + "".join(items) + "</ul>"


def _prompt_cards(run: Run, images: _Images) -> tuple[str, list[str], list[str]]:
    """The grid cards plus the reward keys and tags offered by the controls."""
    by_prompt: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for s in run.samples:
        by_prompt[(s["suite"], s["prompt_id"])].append(s)
    all_keys = sorted(run.entries)
    tags = sorted({s["tag"] for s in run.samples if s.get("tag")})
    cards = []
    for order, ((suite, pid), samples) in enumerate(sorted(by_prompt.items())):
        keys = [k for k in all_keys if k.startswith(suite + "/")]
        means = {}
        for key in keys:
            vals = [v for v in (valid_score(s, key.split("/", 1)[1]) for s in samples) if v is not None]
            means[key] = sum(vals) / len(vals) if vals else None
        first = samples[0]
        figs = "".join(f"<figure>{images.tag(run, s['image'])}<figcaption>#{s['sample_idx']} seed {s['seed']}"
                       f"</figcaption>{_score_list(run, s, keys)}</figure>"
                       for s in sorted(samples, key=lambda s: s["sample_idx"]))
        cards.append(
            f'<div class="card" data-order="{order}" data-tag="{esc(first.get("tag") or "")}" '
            f'data-text="{esc(first["prompt"].lower())}" data-scores="{esc(json.dumps(means))}">'
            f'<div class="prompt"><b>{esc(suite)} #{pid}</b> '
            + (f'<span class="tag">{esc(first["tag"])}</span> ' if first.get("tag") else "")
            + f'{esc(first["prompt"])}</div><div class="imgs">{figs}</div></div>')
    return "\n".join(cards), all_keys, tags


def _controls(keys: list[str], tags: list[str]) -> str:
    sort_opts = '<option value="">prompt order</option>' + "".join(
        f'<option value="{esc(k)}">{esc(k)}</option>' for k in keys)
    tag_opts = '<option value="">all tags</option>' + "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in tags)
    return ('<div class="controls">'
            f'<label>sort by <select id="rb-sort">{sort_opts}</select></label>'
            '<label><select id="rb-order"><option value="desc">high → low</option>'
            '<option value="asc">low → high</option></select></label>'
            f'<label>tag <select id="rb-tag">{tag_opts}</select></label>'
            '<label>text <input id="rb-text" type="search" size="16"></label>'
            '<label>score ≥ <input id="rb-min" type="number" step="any" size="6"></label>'
            '<label>≤ <input id="rb-max" type="number" step="any" size="6"></label>'
            '<span id="rb-count" class="meta"></span></div>')


def _compare_section(cmp: Comparison, a: Run, b: Run, images: _Images) -> str:
    head = ["suite/reward", "dir", "prompts", "A", "B", "B − A", "95% CI", "p", "McNemar p (exact)", "verdict",
            "role"]
    rows = []
    for d in cmp.rewards:
        dec = fmt.decimals_for(fmt.halfwidth(d.stats.ci))
        rows.append([d.key, fmt.arrow(d.higher_is_better), d.stats.n, fmt.fmt_num(d.stats.mean_a, dec),
                     fmt.fmt_num(d.stats.mean_b, dec), fmt.fmt_num(d.stats.diff, dec, signed=True),
                     fmt.fmt_interval(d.stats.ci, dec), fmt.fmt_p(d.stats.p_value),
                     "–" if d.mcnemar is None else fmt.fmt_p(d.mcnemar.p_exact), d.verdict, d.role or "–"])
    parts = [f"<h2>Compare: {esc(cmp.b_label)} (B) vs {esc(cmp.a_label)} (A)</h2>", _table(head, rows)]
    if cmp.mismatches:
        parts.append('<div class="banner">Compared despite protocol differences: '
                     + esc("; ".join(cmp.mismatches)) + "</div>")
    if cmp.hacking is not None and cmp.hacking.flagged:
        parts.append('<div class="banner">Reward-hacking flag: proxy up (' + esc(", ".join(cmp.hacking.proxies_up))
                     + "), held-out down (" + esc(", ".join(cmp.hacking.held_out_down)) + ")</div>")
    for d in cmp.rewards:
        changed = sorted(d.improved + d.regressed, key=lambda p: (-abs(p.gain), p.prompt_id))
        if changed:
            parts.append(f"<h3>{esc(d.key)}: most changed prompts</h3>")
            parts += [_ab_row(p, a, b, images) for p in changed]
    return "\n".join(parts)


def _ab_row(p: PromptDiff, a: Run, b: Run, images: _Images) -> str:
    cls = "better" if p.gain > 0 else "worse"
    head = (f'<div style="grid-column: 1 / 3"><b>{esc(p.suite)} #{p.prompt_id}</b> {esc(p.prompt)} · '
            f'A {fmt.fmt_num(p.a)} → B {fmt.fmt_num(p.b)} <span class="{cls}">'
            f"(gain {fmt.fmt_num(p.gain, signed=True)})</span></div>")
    sides = "".join(f'<div><div class="meta">{name}</div><div class="imgs">'
                    + "".join(images.tag(run, i) for i in rels) + "</div></div>"
                    for name, run, rels in (("A", a, p.images_a), ("B", b, p.images_b)))
    return f'<div class="ab">{head}{sides}</div>'


def render_report(run: Run, out: Path, *, compare: Run | None = None, top: int = 8, images: str = "embed",
                  thumb: int = 192, allow_mismatch: bool = False) -> str:
    """The HTML document for ``run`` (and ``compare`` as run B); see ``write_report``."""
    img = _Images(out, images, thumb)
    runs = [run] + ([compare] if compare is not None else [])
    cmp = compare_runs(run, compare, top=top, allow_mismatch=allow_mismatch) if compare is not None else None
    missing = [(r.label, m) for r in runs for m in r.missing_images]
    cards, keys, tags = _prompt_cards(run, img)
    charts = "".join(f'<img src="data:image/png;base64,{reward_figure(runs, k)}" alt="{esc(k)}" '
                     f'data-src-name="chart {esc(k)}">' for k in sorted(run.entries) if all(k in r.entries for r in runs))
    body = [
        f"<h1>rtdmd-bench report: {esc(run.label)}" + (f" vs {esc(compare.label)}" if compare else "") + "</h1>",
        '<div id="rb-status" data-checked="0" data-images="0" data-broken="0" data-errors="0"></div>',
        '<div id="rb-broken" class="banner hidden"></div>',
    ]
    if missing:
        body.append(f'<div class="banner">{len(missing)} image(s) missing on disk: '
                    + esc(", ".join(f"{lbl}/{m}" for lbl, m in missing[:10])) + (" ..." if len(missing) > 10 else "")
                    + "</div>")
    for r in runs:
        body += [f"<h2>Run {esc(r.label)}</h2>", _run_meta(r), _summary_table(r)]
    if cmp is not None:
        body.append(_compare_section(cmp, run, compare, img))
    body += [f'<h2>Scores per tag and distributions</h2><div class="charts">{charts}</div>',
             f"<h2>Images of {esc(run.label)}</h2>", _controls(keys, tags), f'<div id="grid" class="grid">{cards}</div>']
    title = f"rtdmd-bench report {run.label}" + (f" vs {compare.label}" if compare else "")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body)
            + f"\n<script>{JS}</script>\n</body></html>\n")


def write_report(run: Run, out: str | Path, **options: Any) -> Path:
    """Render and write the report atomically.

    Args:
        run: run A (loaded with samples).
        out: the HTML file.
        **options: ``compare`` (run B), ``top``, ``images`` ("embed" | "link"), ``thumb``, ``allow_mismatch``.

    Returns:
        The written path.
    """
    from rtdmd_bench.io import atomic_write_text

    out = Path(out)
    atomic_write_text(out, render_report(run, out, **options))
    return out
