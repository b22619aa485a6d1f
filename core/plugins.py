"""The plugin manager: loads the `pixiu` entry-point group and core defaults, and collects what they register."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from functools import cache

import pluggy

from pixiu import __version__, hookspecs
from pixiu.domain import Domain, ModelSource
from pixiu.errors import PixiuError

ENTRY_POINT_GROUP = "pixiu"
DEFAULT_PLUGINS = ("pixiu.default_plugins.model_sources",)


FAILED_PLUGINS: dict[str, str] = {}
"""Entry-point plugins that raised while loading, by name, with the error; filled by `get_plugin_manager`."""


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager with core defaults and installed plugins loaded.

    A plugin that fails to import is left out and recorded in `FAILED_PLUGINS`; the rest keep working.
    """
    pm = pluggy.PluginManager("pixiu")
    pm.add_hookspecs(hookspecs)
    for module_path in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_path), name=module_path)
    FAILED_PLUGINS.clear()
    _load_entry_points(pm)
    pm.check_pending()
    if os.environ.get("PIXIU_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register each plugin of the entry-point group (only those in PIXIU_LOAD_PLUGINS, when it is set)."""
    allowed = os.environ.get("PIXIU_LOAD_PLUGINS")
    names = None if allowed is None else {part.strip() for part in allowed.split(",") if part.strip()}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (names is not None and entry_point.name not in names) or pm.has_plugin(entry_point.name):
            continue
        try:
            pm.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            FAILED_PLUGINS[entry_point.name] = f"{type(exc).__name__}: {exc}"
            print(f"pixiu: plugin {entry_point.name!r} failed to load and is skipped: {exc}", file=sys.stderr)
            continue
        _DISTRIBUTIONS[entry_point.name] = entry_point.dist


_DISTRIBUTIONS: dict[str, importlib.metadata.Distribution | None] = {}


def get_domains() -> dict[str, Domain]:
    """Collect every registered domain by name; a name registered twice is an error naming both plugins."""
    domains: dict[str, Domain] = {}

    def register(domain: Domain) -> None:
        if domain.name in domains:
            first, second = (_owner(d) for d in (domains[domain.name], domain))
            msg = (
                f"domain {domain.name!r} is registered twice: by {first!r} and by {second!r}. "
                f"Uninstall one of them, or load only one with PIXIU_LOAD_PLUGINS."
            )
            raise PixiuError(msg)
        domains[domain.name] = domain

    get_plugin_manager().hook.register_domains(register=register)
    return domains


def _owner(domain: Domain) -> str:
    """Name the package a domain comes from, judged by where its formatter is defined."""
    return domain.formatter.__module__.split(".")[0]


def get_domain(name: str) -> Domain:
    """Return the domain called `name`, or raise an error listing the known ones."""
    domains = get_domains()
    if name not in domains:
        known = ", ".join(sorted(domains)) or "none (is a domain plugin installed?)"
        raise PixiuError(f"unknown domain {name!r}; known domains: {known}. See `pixiu domain list`.")
    return domains[name]


def get_model_sources() -> dict[str, ModelSource]:
    """Collect every registered `--base` scheme; a scheme registered twice is an error."""
    sources: dict[str, ModelSource] = {}

    def register(source: ModelSource) -> None:
        if source.scheme in sources:
            raise PixiuError(f"model source scheme {source.scheme!r} is registered twice")
        sources[source.scheme] = source

    get_plugin_manager().hook.register_model_sources(register=register)
    return sources


def describe_plugins() -> list[dict[str, object]]:
    """Each plugin: name, version, whether it is built in, its hooks, and the error of one that failed to load."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in pm.list_name_plugin():
        dist = _DISTRIBUTIONS.get(name)
        rows.append(
            {
                "name": name,
                "version": dist.version if dist else (__version__ if name in DEFAULT_PLUGINS else None),
                "source": "core" if name in DEFAULT_PLUGINS else "entry point",
                "module": getattr(plugin, "__name__", repr(plugin)),
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
                "status": "loaded",
            }
        )
    for name, error in FAILED_PLUGINS.items():
        rows.append({"name": name, "version": None, "source": "entry point", "module": None, "hooks": [],
                     "status": f"failed: {error}"})
    return rows
