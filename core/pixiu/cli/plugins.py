"""`pixiu plugins ...`: list, install, uninstall and scaffold domain plugins."""

from __future__ import annotations

from pathlib import Path

import click

from pixiu.cli.output import print_rows


@click.group(name="plugins")
def group() -> None:
    """Find, add and write pixiu plugins (domains, model sources, commands).

    A plugin is a Python package with an entry point in the `pixiu` group.

    \b
    Examples:
      pixiu plugins new finance          # scaffold ./pixiu-finance, tests included
      pixiu plugins install ./pixiu-finance
      pixiu domain train finance
    PIXIU_LOAD_PLUGINS=a,b loads only those plugins; PIXIU_TRACE_PLUGINS=1 prints every hook call.
    """


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_plugins(as_json: bool) -> None:
    """List plugins: version, source (built-in or installed), hooks, and status.

    A plugin that failed to load, or whose hook raised, is listed with its error.

    \b
    Examples:
      pixiu plugins list
      PIXIU_TRACE_PLUGINS=1 pixiu plugins list --json
    """
    from pixiu.plugins import describe_plugins

    columns = ["name", "version", "source", "package", "hooks", "status"]
    print_rows(describe_plugins(), columns, as_json=as_json, empty="No plugins loaded.")


@group.command(name="install", context_settings={"ignore_unknown_options": True})
@click.argument("spec")
@click.argument("pip_args", nargs=-1, type=click.UNPROCESSED)
def install_plugin(spec: str, pip_args: tuple[str, ...]) -> None:
    """Install a plugin package with pip into pixiu's own environment.

    SPEC is anything pip takes: a package name (pixiu-finance), a folder (./pixiu-finance), a git URL
    (git+https://host/team/pixiu-finance.git). Arguments after `--` go to pip unchanged, before SPEC.

    \b
    Examples:
      pixiu plugins install ./pixiu-finance -- --editable
      pixiu plugins install pixiu-finance -- --upgrade
    """
    from pixiu.plugin_packages import install

    added = install(spec, pip_args)
    if not added:
        click.echo(f"{spec} installed, but it adds no plugin to the `pixiu` entry-point group.", err=True)
        return
    for name, dist in sorted(added.items()):
        click.echo(f"plugin {name!r} installed (package {dist}); see `pixiu domain list` and `pixiu plugins list`")
    broken = _not_loading(set(added))
    if broken:
        listed = "\n".join(f"  - {name} ({added[name]}): {status}" for name, status in sorted(broken.items()))
        raise click.ClickException(
            f"installed, but it does not load:\n{listed}\nFix the plugin and install it "
            "again, or remove it with `pixiu plugins uninstall NAME`."
        )


def _not_loading(names: set[str]) -> dict[str, str]:
    """Load the plugins afresh and return the status of each of `names` that did not load cleanly."""
    import importlib

    from pixiu.plugins import describe_plugins, get_plugin_manager

    importlib.invalidate_caches()
    get_plugin_manager.cache_clear()
    return {
        str(row["name"]): str(row["status"])
        for row in describe_plugins()
        if row["name"] in names and row["status"] != "loaded"
    }


@group.command(name="uninstall")
@click.argument("name")
def uninstall_plugin(name: str) -> None:
    """Uninstall the package that provides plugin NAME (or the package called NAME) with pip.

    \b
    Examples:
      pixiu plugins uninstall finance                 # the package pixiu-finance, found by its plugin name
      pixiu plugins uninstall pixiu-finance
    """
    from pixiu.plugin_packages import uninstall

    dist, plugins = uninstall(name)
    click.echo(f"uninstalled {dist} (plugins: {', '.join(plugins)})")


@group.command(name="new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to create the package folder pixiu-NAME in.",
)
@click.option("--description", help="One line for `pixiu domain list` [default: 'Answers questions about NAME.'].")
def new_plugin(name: str, directory: Path, description: str | None) -> None:
    """Scaffold a pip-installable domain plugin package pixiu-NAME for the domain NAME.

    It has the entry point, hook implementations (formatter, parser, metrics, default recipe, a spider
    skeleton), a small sample data set, a README, and tests that pass as generated.

    \b
    Examples:
      pixiu plugins new finance                       # ./pixiu-finance
      pixiu plugins new finance --dir ~/src --description "Answers questions about balance sheets."
    """
    from pixiu.plugins import get_domains
    from pixiu.scaffold import create_plugin

    created = create_plugin(name, directory, description)
    click.echo(f"created {created}\n")
    if name in get_domains():
        click.echo(
            f"warning: a domain {name!r} is already installed; once pixiu-{name} is installed too, its "
            f"registration of {name!r} is skipped. Rename the domain unless you mean to replace the "
            f"installed one (then uninstall that first).",
            err=True,
        )
    click.echo("next:")
    click.echo(f"  cd {created} && python -m pytest      # its own tests")
    click.echo(f"  pixiu plugins install {created}")
    click.echo(f"  pixiu domain train {name}")
