"""The adapter registry: every finished run, by name (its domain); the newest of a name wins, older ones are kept."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pixiu.errors import PixiuError
from pixiu.files import atomic_write_json, locked
from pixiu.paths import pixiu_home


@dataclass(frozen=True)
class AdapterEntry:
    """One registered adapter."""

    name: str
    domain: str
    path: str
    base: str
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)


def registry_file() -> Path:
    """The JSON file that lists registered adapters."""
    return pixiu_home() / "adapters.json"


def list_adapters() -> list[AdapterEntry]:
    """Every registered adapter, newest first."""
    path = registry_file()
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["adapters"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PixiuError(f"adapter registry {path} is unreadable ({exc}); move it aside to start a new one") from exc
    entries = [AdapterEntry(**row) for row in rows]
    return sorted(entries, key=lambda e: e.created, reverse=True)


def register_adapter(name: str, domain: str, path: Path, base: str, metrics: dict[str, Any]) -> AdapterEntry:
    """Add a finished run to the registry and return its entry.

    The read-modify-write holds a lock across processes and replaces the file atomically, so runs that
    finish together all get registered and a crash never leaves half a registry.
    """
    entry = AdapterEntry(
        name=name,
        domain=domain,
        path=str(Path(path).resolve()),
        base=base,
        created=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        metrics=metrics,
    )
    with locked(registry_file().with_name(".adapters.lock")):
        entries = [e for e in list_adapters() if e.path != entry.path] + [entry]
        atomic_write_json(registry_file(), {"adapters": [asdict(e) for e in entries]})
    return entry


def resolve_adapter(name_or_dir: str) -> Path:
    """The folder of an adapter given directly (or of a full/freeze run: a whole model with its `pixiu_run.yaml`), or
    of the newest registry entry of that name."""
    folder = Path(name_or_dir).expanduser()
    whole_model = (folder / "config.json").is_file() and (folder / "pixiu_run.yaml").is_file()
    if (folder / "adapter_config.json").is_file() or whole_model:
        return folder
    for entry in list_adapters():
        if entry.name == name_or_dir:
            return Path(entry.path)
    known = sorted({e.name for e in list_adapters()})
    hint = f"registered adapters: {', '.join(known)}" if known else "no adapter is registered yet (train one first)"
    raise PixiuError(f"no adapter {name_or_dir!r}: not a folder with adapter_config.json, and {hint}")
