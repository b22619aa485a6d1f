"""The plugin manager: loads the `pixiu` entry-point group and core defaults, and calls their hooks.

Plugins are isolated from each other and from pixiu: one that fails to import, needs another hook
API, or raises inside a hook is reported by name (on stderr and in `pixiu plugins list`) and left
out, and everything else keeps working.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from pixiu import __version__, hookspecs
from pixiu.domain import Domain, ModelSource, WebPage
from pixiu.errors import PixiuError

ENTRY_POINT_GROUP = "pixiu"
DEFAULT_PLUGINS = ("pixiu.default_plugins.model_sources", "pixiu.default_plugins.chat")
HOOK_API_ATTRIBUTE = "PIXIU_HOOK_API"
"""The module-level name under which a plugin states the hook API versions it works with."""

FAILED_PLUGINS: dict[str, str] = {}
"""Entry-point plugins left out while loading (import error, incompatible hook API), by name, with the reason."""

HOOK_ERRORS: dict[str, dict[str, str]] = {}
"""Hook implementations that raised, by plugin name then hook name, with the error; their result is ignored."""

_DISTRIBUTIONS: dict[str, importlib.metadata.Distribution | None] = {}


class PluginError(PixiuError):
    """A plugin cannot be used: it declares no hook API, or one this pixiu does not provide."""


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager with core defaults and installed plugins loaded.

    A plugin that fails to load is left out and recorded in `FAILED_PLUGINS`; the rest keep working.
    """
    pm = pluggy.PluginManager("pixiu")
    pm.add_hookspecs(hookspecs)
    for module_path in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_path), name=module_path)
    FAILED_PLUGINS.clear()
    HOOK_ERRORS.clear()
    _load_entry_points(pm)
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register each plugin of the entry-point group (only those in PIXIU_LOAD_PLUGINS, when it is set)."""
    allowed = os.environ.get("PIXIU_LOAD_PLUGINS")
    names = None if allowed is None else {part.strip() for part in allowed.split(",") if part.strip()}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (names is not None and entry_point.name not in names) or pm.has_plugin(entry_point.name):
            continue
        _DISTRIBUTIONS[entry_point.name] = entry_point.dist
        try:
            plugin = entry_point.load()
            check_hook_api(plugin, entry_point.name)
            pm.register(plugin, name=entry_point.name)
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            FAILED_PLUGINS[entry_point.name] = f"{type(exc).__name__}: {exc}"
            print(f"pixiu: plugin {entry_point.name!r} is skipped: {type(exc).__name__}: {exc}", file=sys.stderr)


def check_hook_api(plugin: object, name: str) -> None:
    """Raise `PluginError` unless `plugin` declares a `PIXIU_HOOK_API` range that includes `hookspecs.HOOK_API`."""
    module = getattr(plugin, "__name__", type(plugin).__name__)
    declared = getattr(plugin, HOOK_API_ATTRIBUTE, None)
    example = f'{HOOK_API_ATTRIBUTE} = "{current_hook_api_range()}"'
    if declared is None:
        raise PluginError(f"plugin {name!r} does not say which hook API it needs; add `{example}` to {module}")
    try:
        compatible = Version(hookspecs.HOOK_API) in SpecifierSet(str(declared))
    except InvalidSpecifier:
        raise PluginError(
            f"plugin {name!r} declares {HOOK_API_ATTRIBUTE} = {declared!r}, "
            f"which is not a version range; write e.g. `{example}`"
        ) from None
    if not compatible:
        raise PluginError(
            f"plugin {name!r} needs pixiu hook API {declared}, but pixiu {__version__} provides hook API "
            f"{hookspecs.HOOK_API}; install a release of the plugin made for it, or a pixiu that provides {declared}"
        )


def current_hook_api_range() -> str:
    """The range a plugin written against this pixiu should declare: this hook API up to the next major one."""
    return f">={hookspecs.HOOK_API},<{Version(hookspecs.HOOK_API).major + 1}"


def call_hook(hook_name: str, **arguments: Any) -> list[tuple[str, Any]]:
    """Call every implementation of `hook_name` in pluggy's order, isolating failures.

    Returns (plugin name, result) for each implementation that returned without raising; one that
    raised is recorded in `HOOK_ERRORS`, reported once on stderr, and skipped.
    """
    called = ((impl, _invoke(impl, hook_name, arguments)) for impl in _implementations(hook_name))
    return [(impl.plugin_name, result) for impl, (ok, result) in called if ok]


def fold_hook(hook_name: str, value_name: str, **arguments: Any) -> Any:
    """Pass `arguments[value_name]` through every implementation in turn and return what the last one left.

    Each implementation sees the value as the previous one left it; returning None leaves it as is.
    """
    for impl in _implementations(hook_name):
        ok, result = _invoke(impl, hook_name, arguments)
        if ok and result is not None:
            arguments[value_name] = result
    return arguments[value_name]


def collect_registered(hook_name: str, expected: type) -> list[tuple[str, Any]]:
    """Call a `register_*` hook plugin by plugin; return (plugin name, object) for each object registered.

    A plugin that raises, or registers something other than an `expected`, contributes nothing.
    """
    collected = []
    for impl in _implementations(hook_name):
        items: list[Any] = []
        ok, _ = _invoke(impl, hook_name, {"register": items.append})
        wrong = [item for item in items if not isinstance(item, expected)]
        if ok and wrong:
            record_hook_error(
                impl.plugin_name, hook_name, f"registered a {type(wrong[0]).__name__}, not a pixiu.{expected.__name__}"
            )
        elif ok:
            collected += [(impl.plugin_name, item) for item in items]
    return collected


def _implementations(hook_name: str) -> list[pluggy.HookImpl]:
    """The implementations of `hook_name`, in the order pluggy would call them (the last registered first).

    Hook wrappers are left out: pixiu's hooks are plain calls, each implementation isolated from the rest.
    """
    impls = getattr(get_plugin_manager().hook, hook_name).get_hookimpls()
    return [impl for impl in reversed(impls) if not (impl.wrapper or impl.hookwrapper)]


def _invoke(impl: pluggy.HookImpl, hook_name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """Call one implementation with the arguments it asks for; (False, None) when it raised."""
    arguments = {name: arguments[name] for name in impl.argnames}
    trace = bool(os.environ.get("PIXIU_TRACE_PLUGINS"))
    if trace:
        print(f"pixiu: hook {hook_name} -> {impl.plugin_name}({', '.join(arguments)})", file=sys.stderr)
    try:
        result = impl.function(**arguments)
    except Exception as exc:  # a plugin's bug must not take pixiu down with it
        record_hook_error(impl.plugin_name, hook_name, f"{type(exc).__name__}: {exc}")
        return False, None
    if trace:
        print(f"pixiu: hook {hook_name} <- {impl.plugin_name}: {result!r:.200}", file=sys.stderr)
    return True, result


def record_hook_error(plugin_name: str, hook_name: str, error: str) -> None:
    """Remember that a plugin's hook failed, and say so on stderr the first time."""
    errors = HOOK_ERRORS.setdefault(plugin_name, {})
    if hook_name not in errors:
        print(
            f"pixiu: plugin {plugin_name!r} failed in hook {hook_name} and is skipped there: {error}", file=sys.stderr
        )
    errors[hook_name] = error


def get_domains() -> dict[str, Domain]:
    """Collect every registered domain by name; a name registered again is skipped and reported on its plugin.

    The plugin registered first keeps the name (pluggy calls the last registered first, hence the reversal),
    so installing a clashing plugin disables only its clashing registration, never the domains already there.
    """
    domains: dict[str, Domain] = {}
    owners: dict[str, str] = {}
    for plugin_name, domain in reversed(collect_registered("register_domains", Domain)):
        if domain.name in domains:
            record_hook_error(
                plugin_name,
                "register_domains",
                f"domain {domain.name!r} ({_owner(domain)}) is already registered by plugin {owners[domain.name]!r} "
                f"({_owner(domains[domain.name])}), so this registration is skipped. Rename the domain, uninstall "
                f"one of the plugins, or load only one with PIXIU_LOAD_PLUGINS.",
            )
            continue
        domains[domain.name], owners[domain.name] = domain, plugin_name
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
    for _, source in collect_registered("register_model_sources", ModelSource):
        if source.scheme in sources:
            raise PixiuError(f"model source scheme {source.scheme!r} is registered twice")
        sources[source.scheme] = source
    return sources


PAGE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""What a web page's name may be: it is a URL segment."""


def get_web_pages() -> dict[str, WebPage]:
    """Collect every registered web page by name; a page with a bad name or without an `index.html`, or a name
    registered again, is skipped and reported on its plugin (the first registered keeps the name)."""
    pages: dict[str, WebPage] = {}
    owners: dict[str, str] = {}
    for plugin_name, page in reversed(collect_registered("register_web_pages", WebPage)):
        problem = None
        if not PAGE_NAME.fullmatch(page.name):
            problem = f"web page name {page.name!r} is not a URL segment; use lowercase letters, digits and dashes"
        elif not (Path(page.static) / "index.html").is_file():
            problem = f"web page {page.name!r} has no {Path(page.static) / 'index.html'}; ship it as package data"
        elif page.name in pages:
            problem = (
                f"web page {page.name!r} is already registered by plugin {owners[page.name]!r}, so this is skipped"
            )
        if problem:
            record_hook_error(plugin_name, "register_web_pages", problem)
            continue
        pages[page.name], owners[page.name] = page, plugin_name
    return pages


def describe_plugins() -> list[dict[str, object]]:
    """Each plugin: name, version, source, package, its hooks, and its status (loaded, or what failed).

    Domains, model sources and web pages are collected first, so a plugin whose registration hook raises shows it.
    """
    pm = get_plugin_manager()
    for collect in (get_domains, get_model_sources, get_web_pages):
        with contextlib.suppress(PixiuError):  # a clash of two model-source schemes is reported where it matters
            collect()
    rows = []
    for name, plugin in pm.list_name_plugin():
        errors = HOOK_ERRORS.get(name, {})
        status = "; ".join(f"failed in {hook}: {error}" for hook, error in errors.items()) or "loaded"
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append(_describe(name, status, hooks, getattr(plugin, "__name__", repr(plugin))))
    rows += [_describe(name, f"failed: {error}", [], None) for name, error in FAILED_PLUGINS.items()]
    return rows


def _describe(name: str, status: str, hooks: list[str], module: str | None) -> dict[str, object]:
    """One row of `describe_plugins`."""
    dist = _DISTRIBUTIONS.get(name)
    if name in DEFAULT_PLUGINS:
        source, package, version = "built-in", "pixiu", __version__
    elif dist is None:
        source, package, version = "registered at run time", None, None
    else:
        package, version, source = dist.name, dist.version, "installed"
    return {
        "name": name,
        "version": version,
        "source": source,
        "package": package,
        "module": module,
        "hooks": hooks,
        "status": status,
    }
