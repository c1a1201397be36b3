"""Inline CSS and JavaScript of the HTML report (kept in Python so the package needs no data files).

The script does three things: sort/filter the prompt grid by a reward's per-prompt mean, by tag and by
text; and a self-check that, once the page has loaded, counts images that failed to render and script
errors into ``#rb-status`` (shown as a banner; the browser test reads the same attributes).
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; background: #fff; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
.meta { font-size: 0.85rem; color: #555; }
.banner { background: #fde2e2; border: 1px solid #e99; padding: 0.5rem; margin: 0.5rem 0; }
.hidden { display: none; }
.charts img { max-width: 100%; border: 1px solid #ddd; background: #fff; margin: 0.25rem; }
.controls { position: sticky; top: 0; background: #fafafa; padding: 0.5rem 0; z-index: 1; }
.controls label { margin-right: 0.8rem; font-size: 0.85rem; }
.grid { display: flex; flex-wrap: wrap; gap: 0.75rem; }
.card { background: #fff; border: 1px solid #ddd; padding: 0.5rem; width: min(100%, 26rem); }
.card .prompt { font-size: 0.85rem; margin-bottom: 0.3rem; }
.card .tag { font-size: 0.75rem; color: #fff; background: #678; padding: 0 0.3rem; border-radius: 0.2rem; }
.imgs { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: flex-start; }
figure { margin: 0; font-size: 0.72rem; }
.imgs img { display: block; width: 8rem; height: auto; border: 1px solid #ccc; }
.links { font-size: 0.8rem; } .links a { margin-right: 0.35rem; }
.missing { width: 8rem; height: 8rem; background: #eee; color: #a00; font-size: 0.7rem; overflow: hidden;
           display: flex; align-items: center; justify-content: center; text-align: center; }
.scores { margin: 0.15rem 0 0 0; padding: 0; list-style: none; }
.ab { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5rem; background: #fff; border: 1px solid #ddd;
      padding: 0.5rem; margin-bottom: 0.5rem; }
.better { color: #060; } .worse { color: #a00; }
"""

JS = """
(function () {
  "use strict";
  var status = document.getElementById("rb-status");
  window.addEventListener("error", function (e) {
    if (e.target && e.target.tagName) { return; }  // resource load errors: counted below as broken images
    status.dataset.errors = String(Number(status.dataset.errors) + 1);
  });
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.querySelectorAll("img"));
    var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
    status.dataset.images = String(imgs.length);
    status.dataset.broken = String(broken.length);
    status.dataset.checked = "1";
    if (broken.length) {
      var banner = document.getElementById("rb-broken");
      banner.textContent = broken.length + " image(s) failed to load: " +
        broken.slice(0, 5).map(function (i) { return i.getAttribute("data-src-name"); }).join(", ");
      banner.classList.remove("hidden");
    }
  });

  var grid = document.getElementById("grid");
  if (!grid) { return; }
  var cards = Array.prototype.slice.call(grid.querySelectorAll(".card"));
  cards.forEach(function (c) { c.rbScores = JSON.parse(c.getAttribute("data-scores")); });
  var byId = function (id) { return document.getElementById(id); };
  var controls = ["rb-sort", "rb-order", "rb-tag", "rb-text", "rb-min", "rb-max"].map(byId);

  function value(card, reward) {
    var v = card.rbScores[reward];
    return (v === null || v === undefined) ? NaN : v;
  }

  function apply() {
    var reward = byId("rb-sort").value, desc = byId("rb-order").value === "desc";
    var tag = byId("rb-tag").value, text = byId("rb-text").value.toLowerCase();
    var lo = parseFloat(byId("rb-min").value), hi = parseFloat(byId("rb-max").value);
    var shown = 0;
    var sorted = cards.slice().sort(function (a, b) {
      if (!reward) { return Number(a.dataset.order) - Number(b.dataset.order); }
      var va = value(a, reward), vb = value(b, reward);
      if (isNaN(va)) { return 1; } if (isNaN(vb)) { return -1; }
      return desc ? vb - va : va - vb;
    });
    sorted.forEach(function (card) {
      var v = reward ? value(card, reward) : NaN;
      var ok = (!tag || card.dataset.tag === tag) &&
        (!text || card.dataset.text.indexOf(text) >= 0) &&
        (isNaN(lo) || (!isNaN(v) && v >= lo)) && (isNaN(hi) || (!isNaN(v) && v <= hi));
      card.classList.toggle("hidden", !ok);
      if (ok) { shown += 1; }
      grid.appendChild(card);
    });
    byId("rb-count").textContent = shown + " of " + cards.length + " prompts shown";
  }
  // Shareable views: report.html#sort=suite/reward&order=asc&tag=t&text=cat&min=0.3&max=1 presets the controls.
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var parts = kv.split("="), el = byId("rb-" + decodeURIComponent(parts[0]));
    if (el && parts.length === 2) { el.value = decodeURIComponent(parts[1]); }
  });
  controls.forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  apply();
})();
"""
