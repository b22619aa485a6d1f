"""`pixiu plugins new`: a pip-installable domain plugin made from the cookiecutter template in `templates/plugin`."""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from pathlib import Path

from pixiu import __version__
from pixiu.errors import PixiuError
from pixiu.plugins import current_hook_api_range

TEMPLATE = Path(__file__).resolve().parent / "templates" / "plugin"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def create_plugin(name: str, directory: Path, description: str | None = None) -> Path:
    """Write the package `pixiu-NAME` into `directory` and return its folder.

    It holds the entry point, hook implementations (formatter, parser, metrics, default recipe, a
    spider skeleton), a small sample data set, a README, and tests that pass as generated.

    Raises:
        PixiuError: `name` is not a lower-case Python identifier, or the target folder already exists.
    """
    from cookiecutter.exceptions import OutputDirExistsException
    from cookiecutter.main import cookiecutter

    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise PixiuError(
            f"plugin name {name!r} must be a lower-case Python identifier (letters, digits, '_'; "
            f"starting with a letter), e.g. 'finance' or 'customer_support'"
        )
    major, minor = __version__.split(".")[:2]
    context = {"name": name, "pixiu_requirement": f"pixiu>={major}.{minor}", "hook_api": current_hook_api_range()}
    if description:
        context["description"] = description
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pixiu-cookiecutter-") as scratch:
        try:
            created = cookiecutter(
                str(TEMPLATE),
                no_input=True,
                extra_context=context,
                output_dir=str(directory),
                default_config={"replay_dir": scratch, "cookiecutters_dir": scratch},  # nothing left in ~
            )
        except OutputDirExistsException:
            raise PixiuError(
                f"{directory / ('pixiu-' + name.replace('_', '-'))} already exists; choose another --dir or name"
            ) from None
    created = Path(created)
    for compiled in list(created.rglob("__pycache__")):  # an installed pixiu's template may carry bytecode
        shutil.rmtree(compiled)
    return created
