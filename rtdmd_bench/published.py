"""Published numbers with provenance: the one home (``leaderboards/published.yaml``) and its strict loader.

The file groups numbers by table (one paper table shares its source, resolution and per-metric prompt
set / units / scorer); ``load_published`` expands it into flat ``PublishedNumber`` records, each with
model, NFE, CFG, prompt set, metric, units, value and source. Any unknown key, missing key, wrong type,
undeclared metric or duplicate number is an error naming its place in the file, because a silently
mis-read anchor would make the leaderboard's "published vs measured" column lie.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCHEMA_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "leaderboards" / "published.yaml"

_TOP_KEYS = {"schema_version": int, "sources": dict, "tables": list}
_SOURCE_KEYS = {"citation": str, "url": str}
_SOURCE_OPTIONAL = {"note": str}
_TABLE_KEYS = {"source": str, "title": str, "resolution": (int, type(None)), "metrics": dict, "rows": list}
_METRIC_KEYS = {"prompt_set": str, "units": str, "scorer": str}
_METRIC_OPTIONAL = {"metric": str, "n_prompts": int, "note": str, "higher_is_better": bool}
_ROW_KEYS = {"model": str, "nfe": (int, type(None)), "steps": (int, type(None)), "cfg": (int, float, str, type(None)),
             "n_prompts": (int, type(None)), "models": list, "values": dict}
_ROW_OPTIONAL = {"note": str}
CFG_WORDS = ("off", "on")


class _PrintedFloat(float):
    """A YAML number that remembers how it was written (0.2810 stays "0.2810", as the paper prints it)."""

    text: str


class _Loader(yaml.SafeLoader):
    """safe_load, except that numbers keep their written form."""


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _PrintedFloat:
    number = _PrintedFloat(yaml.SafeLoader.construct_yaml_float(loader, node))
    number.text = node.value
    return number


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class PublishedError(ValueError):
    """published.yaml is malformed (the message gives the place in the file)."""


@dataclass(frozen=True)
class PublishedNumber:
    """One published number with its provenance.

    Attributes:
        source: key into the file's ``sources`` (citation and URL there).
        table: table title.
        model: model name as the source prints it.
        nfe / steps: network evaluations / sampler steps per image (None = not stated).
        cfg: guidance scale, ``"off"``, ``"on"`` (scale not stated) or None (not stated).
        resolution: pixels per side (None = not stated).
        prompt_set: suite name the number was measured on.
        metric: reward name (rtdmd-bench registry name where one exists).
        units: raw units of the value.
        scorer: scorer checkpoint / version as far as the source says.
        value: the number.
        text: the number as written in the file (and the paper).
        higher_is_better: direction of the metric.
        n_prompts: prompts behind the number (None = not stated).
        models: rtdmd-bench model names whose runs reproduce this row.
        note: caveats.
    """

    source: str
    table: str
    model: str
    nfe: int | None
    steps: int | None
    cfg: float | str | None
    resolution: int | None
    prompt_set: str
    metric: str
    units: str
    scorer: str
    value: float
    text: str
    higher_is_better: bool
    n_prompts: int | None
    models: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Published:
    """The whole file: ``sources`` (key -> {citation, url, note}) and the expanded ``numbers``."""

    sources: dict[str, dict[str, str]]
    numbers: tuple[PublishedNumber, ...]


def _check_keys(obj: Any, required: dict[str, Any], optional: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise PublishedError(f"{where}: expected a mapping, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise PublishedError(f"{where}: unknown key(s) {unknown}; allowed: {sorted({**required, **optional})}")
    for key in required:
        if key not in obj:
            raise PublishedError(f"{where}: missing key {key!r} (write null when the source does not state it)")
    for key, types in {**required, **optional}.items():
        if key in obj and not _type_ok(obj[key], types):
            raise PublishedError(f"{where}.{key}: expected {types}, got {obj[key]!r}")


def _type_ok(value: Any, types: Any) -> bool:
    """isinstance, except that YAML booleans are not accepted where a number is expected."""
    allowed = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


def load_published(path: str | Path = DEFAULT_PATH) -> Published:
    """Read and validate published.yaml.

    Args:
        path: the YAML file.

    Returns:
        ``Published`` with every number expanded to a ``PublishedNumber``.

    Raises:
        PublishedError: with the offending place in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PublishedError(f"{path}: published-numbers file not found")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise PublishedError(f"{path}: invalid YAML: {exc}") from None
    _check_keys(doc, _TOP_KEYS, {}, str(path))
    if doc["schema_version"] != SCHEMA_VERSION:
        raise PublishedError(f"{path}: schema_version {doc['schema_version']} is not {SCHEMA_VERSION}")
    sources = {}
    for key, src in doc["sources"].items():
        _check_keys(src, _SOURCE_KEYS, _SOURCE_OPTIONAL, f"{path}: sources.{key}")
        sources[str(key)] = dict(src)
    numbers: list[PublishedNumber] = []
    for t_idx, table in enumerate(doc["tables"]):
        numbers += _expand_table(table, sources, f"{path}: tables[{t_idx}]")
    _reject_duplicates(numbers, path)
    return Published(sources=sources, numbers=tuple(numbers))


def _expand_table(table: Any, sources: dict[str, Any], where: str) -> list[PublishedNumber]:
    _check_keys(table, _TABLE_KEYS, {}, where)
    if table["source"] not in sources:
        raise PublishedError(f"{where}.source: {table['source']!r} is not in sources ({sorted(sources)})")
    for column, spec in table["metrics"].items():
        _check_keys(spec, _METRIC_KEYS, _METRIC_OPTIONAL, f"{where}.metrics.{column}")
    used: set[str] = set()
    numbers = []
    for r_idx, row in enumerate(table["rows"]):
        row_where = f"{where}.rows[{r_idx}] ({row.get('model', '?') if isinstance(row, dict) else '?'})"
        _check_row(row, row_where)
        for column, value in row["values"].items():
            if column not in table["metrics"]:
                raise PublishedError(f"{row_where}.values.{column}: metric not declared in the table's metrics "
                                     f"({sorted(table['metrics'])})")
            used.add(column)
            numbers.append(_number(table, column, row, value, f"{row_where}.values.{column}"))
    unused = sorted(set(table["metrics"]) - used)
    if unused:
        raise PublishedError(f"{where}.metrics: declared but never given a value: {unused}")
    return numbers


def _check_row(row: Any, where: str) -> None:
    _check_keys(row, _ROW_KEYS, _ROW_OPTIONAL, where)
    cfg = row["cfg"]
    if isinstance(cfg, str) and cfg not in CFG_WORDS:
        raise PublishedError(f"{where}.cfg: {cfg!r} must be a number, one of {CFG_WORDS}, or null")
    if isinstance(cfg, (int, float)) and not isinstance(cfg, bool) and cfg <= 0:
        raise PublishedError(f"{where}.cfg: guidance scale must be > 0, got {cfg}")
    for key in ("nfe", "steps", "n_prompts"):
        if row[key] is not None and row[key] <= 0:
            raise PublishedError(f"{where}.{key}: must be positive or null, got {row[key]}")
    if not all(isinstance(m, str) for m in row["models"]):
        raise PublishedError(f"{where}.models: must be a list of model registry names")


def _number(table: dict[str, Any], column: str, row: dict[str, Any], value: Any, where: str) -> PublishedNumber:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PublishedError(f"{where}: value must be a finite number, got {value!r}")
    spec = table["metrics"][column]
    notes = [n for n in (spec.get("note"), row.get("note")) if n]
    return PublishedNumber(
        source=table["source"], table=table["title"], model=row["model"], nfe=row["nfe"], steps=row["steps"],
        cfg=row["cfg"], resolution=table["resolution"], prompt_set=spec["prompt_set"],
        metric=spec.get("metric", column), units=spec["units"], scorer=spec["scorer"], value=float(value),
        text=getattr(value, "text", None) or repr(value),
        higher_is_better=spec.get("higher_is_better", True),
        n_prompts=row["n_prompts"] if row["n_prompts"] is not None else spec.get("n_prompts"),
        models=tuple(row["models"]), note="; ".join(notes),
    )


def _reject_duplicates(numbers: list[PublishedNumber], path: Path) -> None:
    seen: set[tuple[str, str, str, str, str]] = set()
    for num in numbers:
        key = (num.source, num.table, num.model, num.prompt_set, num.metric)
        if key in seen:
            raise PublishedError(f"{path}: duplicate number for {key}")
        seen.add(key)


def published_for(model: str, path: str | Path = DEFAULT_PATH) -> list[PublishedNumber]:
    """The published numbers a run of registry model ``model`` should reproduce (rows whose ``models`` list it)."""
    return [n for n in load_published(path).numbers if model in n.models]
