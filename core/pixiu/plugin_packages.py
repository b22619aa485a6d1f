"""Installing and removing plugin packages with pip, in the Python environment pixiu itself runs in."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Sequence

from pixiu.errors import PixiuError
from pixiu.plugins import ENTRY_POINT_GROUP


def plugin_distributions() -> dict[str, str]:
    """Map each plugin (entry-point name in the `pixiu` group) to the distribution that provides it."""
    return {
        ep.name: ep.dist.name if ep.dist else "?" for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }


def install(spec: str, pip_args: Sequence[str] = ()) -> dict[str, str]:
    """`pip install` `spec` (a name, a path, a git URL: anything pip takes) and return the plugins it added.

    Raises:
        PixiuError: pip failed, or is missing from this environment.
    """
    before = plugin_distributions()
    _pip("install", *pip_args, spec)
    after = plugin_distributions()
    return {name: dist for name, dist in after.items() if before.get(name) != dist}


def uninstall(name: str) -> tuple[str, list[str]]:
    """`pip uninstall` the distribution behind plugin `name` (or the distribution called `name`).

    Returns the distribution removed and the plugins it provided.

    Raises:
        PixiuError: no installed plugin or plugin package has that name.
    """
    plugins = plugin_distributions()
    dist = plugins.get(name) or next((d for d in plugins.values() if _same_project(d, name)), None)
    if dist is None:
        known = ", ".join(f"{plugin} ({d})" for plugin, d in sorted(plugins.items())) or "none"
        raise PixiuError(f"no installed plugin or plugin package is called {name!r}; installed plugins: {known}")
    _pip("uninstall", "--yes", dist)
    return dist, sorted(plugin for plugin, d in plugins.items() if d == dist)


def _same_project(first: str, second: str) -> bool:
    """Whether two distribution names denote the same project (PEP 503: case, '-', '_' and '.' do not matter)."""

    def normal(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    return normal(first) == normal(second)


def _pip(*args: str) -> None:
    """Run pip of this interpreter, its output going straight to the user; raise if it fails."""
    if importlib.util.find_spec("pip") is None:
        raise PixiuError(
            f"pip is not installed in pixiu's environment ({sys.executable}); "
            f"add it with `{sys.executable} -m ensurepip`"
        )
    completed = subprocess.run([sys.executable, "-m", "pip", *args], check=False)
    if completed.returncode != 0:
        raise PixiuError(f"`pip {' '.join(args)}` failed (exit code {completed.returncode}); see pip's output above")
