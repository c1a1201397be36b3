"""One registry shape for models, rewards, suites and trainers.

Each entry is a cheap, frozen *spec* (readable without importing any backend) whose ``target`` is a lazy
``"module:Attr"`` string. ``get()`` imports the target on first use. Wherever a registry name is accepted,
a ``"module:Attr"`` plugin path is accepted as well (``resolve()``).

Installed distributions extend a registry through ``importlib.metadata`` entry points of its ``entry_point_group``
(``rtdmd_bench.models``, ``rtdmd_bench.rewards``, ``rtdmd_bench.suites``), discovered on the first lookup. An entry
point names a spec (or a list of specs), or a class with a ``spec`` attribute (its ``target`` becomes the entry point
itself); a registry may also ``adapt`` other objects (suites accept a ``suite.yaml`` path). A plugin that fails to
load, has the wrong spec type or reuses a taken name is skipped with a warning (``plugin_errors``), never breaking
the built-ins. Keep entry-point modules light (specs, no torch import): ``rtdmd-bench list`` imports them.

Example:
    >>> reg = Registry("widget")
    >>> reg.add(Spec(name="json", target="json:dumps", description="JSON encoder"))
    >>> reg.get("json")({"a": 1})
    '{"a": 1}'
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar


class RegistryError(KeyError):
    """Unknown name, duplicate name or unloadable target. ``str()`` is the full helpful message."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Spec:
    """Minimal spec: every kind-specific spec subclasses this frozen dataclass.

    Attributes:
        name: registry key.
        target: lazy ``"module:Attr"`` path of the implementation.
        description: one line for ``rtdmd-bench list``.
    """

    name: str
    target: str
    description: str = ""

    def summary(self) -> dict[str, str]:
        """Key metadata shown by ``rtdmd-bench list`` (kind-specific specs add columns)."""
        return {}


S = TypeVar("S", bound=Spec)


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr.sub"`` and return the attribute.

    Raises:
        RegistryError: malformed path, missing module or missing attribute, with the path in the message.
    """
    if ":" not in target:
        raise RegistryError(f"plugin path {target!r} must look like 'package.module:Attr'")
    module_name, attr_path = target.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import module {module_name!r} for {target!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise RegistryError(f"module {module_name!r} has no attribute {attr_path!r} ({target!r})") from exc
    return obj


@functools.lru_cache(maxsize=1)
def _installed_entry_points() -> Any:
    """Every installed entry point, read once per process (one scan of the dist-infos serves all registries)."""
    from importlib.metadata import entry_points

    return entry_points()


def did_you_mean(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Closest names to ``name`` among ``choices`` (difflib ratio >= 0.5), best first."""
    return difflib.get_close_matches(name, choices, n=n, cutoff=0.5)


@dataclass
class Registry(Generic[S]):
    """Name -> spec map with lazy targets.

    Args:
        kind: what the entries are ("model", "reward", ...); used in error messages.
        entry_point_group: ``importlib.metadata`` group whose entry points add specs (None: no plugins).
        spec_type: the spec class plugins must provide (None: any ``Spec``).
        adapt: turns a loaded entry-point object that is not a spec into one (e.g. a manifest path), or None.
    """

    kind: str
    entry_point_group: str | None = None
    spec_type: type | None = None
    adapt: Callable[[Any], Any] | None = None
    _specs: dict[str, S] = field(default_factory=dict)
    _loaded: dict[str, Any] = field(default_factory=dict)
    plugin_errors: list[str] = field(default_factory=list)
    plugin_origin: dict[str, str] = field(default_factory=dict)
    _discovered: bool = False

    def _discover(self) -> None:
        """Add the specs of installed entry points (once; ``reload_plugins`` forgets and rediscovers)."""
        if self._discovered or self.entry_point_group is None:
            return
        self._discovered = True
        for ep in _installed_entry_points().select(group=self.entry_point_group):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            where = f"{self.kind} plugin {ep.name!r} ({ep.value}, distribution {dist})"
            try:
                obj = ep.load()
                specs = self._plugin_specs(obj, ep.value)
            except Exception as exc:  # a broken plugin must not break the built-ins
                self._plugin_error(f"{where} failed to load: {type(exc).__name__}: {exc}")
                continue
            for spec, impl in specs:
                if spec.name in self._specs:
                    self._plugin_error(f"{where}: name {spec.name!r} is already taken (kept the existing entry)")
                    continue
                self._specs[spec.name] = spec
                self.plugin_origin[spec.name] = dist
                if impl is not None:
                    self._loaded[spec.name] = impl

    def _plugin_specs(self, obj: Any, value: str) -> list[tuple[Spec, Any]]:
        items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
        out = []
        for item in items:
            if isinstance(item, Spec):
                spec, impl = item, None
            elif isinstance(getattr(item, "spec", None), Spec):
                import dataclasses

                spec, impl = dataclasses.replace(item.spec, target=value), item
            elif self.adapt is not None:
                spec, impl = self.adapt(item), None
            else:
                raise TypeError(f"expected a {self.spec_type.__name__ if self.spec_type else 'Spec'} or a class with "
                                f"a 'spec' attribute, got {type(item).__name__}")
            if self.spec_type is not None and not isinstance(spec, self.spec_type):
                raise TypeError(f"expected a {self.spec_type.__name__}, got {type(spec).__name__}")
            out.append((spec, impl))
        return out

    def _plugin_error(self, message: str) -> None:
        import warnings

        self.plugin_errors.append(message)
        warnings.warn(message, stacklevel=3)

    def reload_plugins(self) -> None:
        """Drop plugin entries and discover the installed entry points again (tests, long-lived processes)."""
        for name in list(self.plugin_origin):
            self.remove(name)
        self.plugin_errors.clear()
        self._discovered = False
        _installed_entry_points.cache_clear()
        self._discover()

    def add(self, spec: S) -> S:
        """Register ``spec``. Raises RegistryError on a duplicate name."""
        if spec.name in self._specs:
            raise RegistryError(f"duplicate {self.kind} name {spec.name!r} (already -> {self._specs[spec.name].target})")
        self._specs[spec.name] = spec
        return spec

    def register(self, spec: S):
        """Decorator form of ``add`` for tests and plugins: ``@REG.register(Spec(...))``."""

        def deco(obj):
            self.add(spec)
            self._loaded[spec.name] = obj
            return obj

        return deco

    def remove(self, name: str) -> None:
        """Drop an entry (tests and plugin reloads)."""
        self._specs.pop(name, None)
        self._loaded.pop(name, None)
        self.plugin_origin.pop(name, None)

    def has_builtin(self, name: str) -> bool:
        """True when ``name`` was added so far, without discovering plugins (for code that runs at import)."""
        return name in self._specs

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._specs)

    def in_registration_order(self) -> list[S]:
        """Specs in the order they were added (``__iter__`` is alphabetical; plugins come after built-ins)."""
        self._discover()
        return list(self._specs.values())

    def __contains__(self, name: object) -> bool:
        if name not in self._specs:
            self._discover()
        return name in self._specs

    def __iter__(self) -> Iterator[S]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        self._discover()
        return len(self._specs)

    def unknown(self, name: str) -> RegistryError:
        """The error for an unknown ``name``: did-you-mean plus every available name."""
        hints = did_you_mean(name, self.names())
        hint = f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        return RegistryError(
            f"unknown {self.kind} {name!r}.{hint} Available {self.kind}s: {', '.join(self.names()) or '(none)'}. "
            f"A plugin can be given as 'package.module:Attr'."
        )

    def spec(self, name: str) -> S:
        """The spec of ``name``; never imports the backend (plugin entry points are imported on first lookup)."""
        if name not in self:
            raise self.unknown(name)
        return self._specs[name]

    def get(self, name: str) -> Any:
        """The implementation of ``name`` (imported once and cached) or of a ``"module:Attr"`` plugin."""
        if name not in self._specs and ":" in name:
            return import_target(name)
        spec = self.spec(name)
        if name not in self._loaded:
            self._loaded[name] = import_target(spec.target)
        return self._loaded[name]

    def resolve(self, name: str) -> str:
        """Validate a name or plugin path without importing registered backends; returns it unchanged.

        Plugin paths are imported (that is the only way to validate them).
        """
        if name in self:
            return name
        if ":" in name:
            import_target(name)
            return name
        raise self.unknown(name)
