"""Strict YAML -> frozen dataclass loading with typed ``--set a.b=value`` overrides.

Every config root is a frozen dataclass tree. ``load(cls, path, overrides)``:

* reads YAML with ``yaml.safe_load`` (a missing file or malformed YAML is a ConfigError naming the file);
* rejects an unknown key at ANY depth, naming the dotted key and the nearest valid keys;
* coerces values by the field's type hint (``int``, ``float``, ``bool``, ``str``, ``Optional``, ``Literal``,
  ``tuple``/``list``, ``dict[str, X]``, nested dataclasses) and rejects mismatches naming the key and type;
* applies overrides after the file, each parsed as YAML scalars (``--set train.lr=3e-6``).

``to_dict(cfg)`` gives the resolved plain-data view saved with every run (``save(cfg, path)``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rtdmd_bench.registry import did_you_mean

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration: unknown key, wrong type, unreadable file. The message says which and how to fix."""


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown_key(key: str, cls: type, prefix: str) -> ConfigError:
    names = _field_names(cls)
    hints = did_you_mean(key, names)
    hint = f" Did you mean {', '.join(repr(prefix + h) for h in hints)}?" if hints else ""
    valid = ", ".join(prefix + n for n in names)
    return ConfigError(f"unknown config key {prefix + key!r}.{hint} Valid keys here: {valid}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` to type hint ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"config key {key!r}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"config key {key!r}: {value!r} is not one of {list(args)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping for {tp.__name__}, got {value!r}")
        return build(tp, value, prefix=key + ".")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key {key!r}: expected {len(args)} items, got {len(value)}")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {coerce(k, kt, key): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-6" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config key {key!r}: cannot use {value!r} as {_type_name(tp)}")


def build(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, strictly (unknown keys and type mismatches raise)."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    known = set(_field_names(cls))
    for key in data:
        if key not in known:
            raise _unknown_key(str(key), cls, prefix)
    kwargs = {k: coerce(v, hints[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without default is missing
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from exc


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], cls: type, overrides: Sequence[str]) -> dict[str, Any]:
    """Merge ``a.b=value`` strings into the raw mapping, checking every path segment against ``cls``.

    Segments below a ``dict``-typed field are free-form (e.g. ``rewards.pickscore=1.0``).
    """
    data = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        dotted, raw = item.split("=", 1)
        _set_path(data, cls, dotted.strip(), _parse_scalar(raw))
    return data


def with_values(cfg: T, values: Mapping[str, Any]) -> T:
    """A copy of the config dataclass ``cfg`` with dotted keys set to Python values, as strictly as ``--set``.

    >>> with_values(cfg, {"train.steps": 5, "rewards": {"r": 1.0}})   # doctest: +SKIP
    """
    data = to_dict(cfg)
    for dotted, value in values.items():
        _set_path(data, type(cfg), dotted, to_dict(value))
    return build(type(cfg), data)


def _set_path(data: dict[str, Any], cls: type, dotted: str, value: Any) -> None:
    """Set ``data[a][b]... = value`` for ``dotted = "a.b..."``, checking each segment against ``cls``."""
    parts = dotted.split(".")
    node, node_cls, prefix = data, cls, ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        next_cls: Any = None
        if dataclasses.is_dataclass(node_cls):
            if part not in _field_names(node_cls):
                raise _unknown_key(part, node_cls, prefix)
            hint = typing.get_type_hints(node_cls)[part]
            next_cls = _dataclass_of(hint)
            is_dict = typing.get_origin(hint) in (dict, Mapping) or hint is dict
            if not last and not dataclasses.is_dataclass(next_cls) and not is_dict:
                raise ConfigError(f"config key {prefix + part!r} is a value, not a section: cannot set {dotted!r}")
        if last:
            node[part] = value
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, node_cls, prefix = node[part], next_cls, prefix + part + "."


def _dataclass_of(hint: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg
    return hint


def _deepcopy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; missing file or malformed YAML is a ConfigError naming the file (and line)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text YAML file ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"malformed YAML in {path}{where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (),
         base: Mapping[str, Any] | None = None) -> T:
    """Strictly load ``cls`` from ``base`` (defaults), then the YAML file, then ``overrides``."""
    data = _deepcopy(dict(base or {}))
    if path is not None:
        data = _merge(data, read_yaml(path))
    return build(cls, apply_overrides(data, cls, overrides))


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else _deepcopy(v)
    return out


def to_dict(cfg: Any) -> Any:
    """Plain-data (JSON/YAML-safe) view of a config tree; tuples become lists."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def save(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    import yaml

    from rtdmd_bench.io import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))
