"""What the `--device` and `--precision` options of every command that runs a model share."""

from __future__ import annotations

import click

PRECISIONS = ["auto", "fp32", "bf16", "fp16"]
"""`--precision` choices (pixiu.devices.Precision), spelled out so `--help` needs no torch import."""


def check_device(ctx: click.Context, param: click.Parameter, spec: str | None) -> str | None:
    """`--device` as given, or a usage error naming the accepted forms (a click callback); whether the device is
    there is checked later, before loading."""
    if spec is None:
        return None
    from pixiu.devices import check_device_spec

    try:
        return check_device_spec(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
