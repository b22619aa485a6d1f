"""Admin routes: load and unload adapters without a restart, behind `Authorization: Bearer $PIXIU_ADMIN_TOKEN`."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

from fastapi import APIRouter, Request

from pixiu.errors import PixiuError
from pixiu.paths import pixiu_home
from pixiu.registry import list_adapters
from pixiu.serve.adapters import UnknownModel
from pixiu.serve.http import ApiError
from pixiu.serve.protocol import AdapterDeleted, AdapterLoad, AdapterLoaded
from pixiu.serve.server import adapter_domain, check_base
from pixiu.serve.state import Server, model_card, server_of, unknown_model

router = APIRouter()


def require_admin(request: Request) -> Server:
    """The server, if the request carries the admin token; otherwise 403 (admin off) or 401."""
    server = server_of(request)
    if server.admin_token is None:
        raise ApiError(
            403, "admin endpoints are disabled; start the server with PIXIU_ADMIN_TOKEN set", type="permission_error"
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), server.admin_token.encode()):
        raise ApiError(
            401,
            "missing or wrong admin token; send `Authorization: Bearer $PIXIU_ADMIN_TOKEN`",
            type="authentication_error",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return server


@router.post("/v1/adapters")
async def load_adapter(body: AdapterLoad, request: Request) -> AdapterLoaded:
    """Load adapter `name` from the registry (or from `path` inside PIXIU_HOME), replacing one of that name."""
    server = require_admin(request)
    folder = _adapter_folder(body.name, body.path, server.base, force=body.force)
    try:
        check_base(folder, server.base, server.engine.model.name_or_path, force=body.force, how='send "force": true')
        domain = await asyncio.to_thread(adapter_domain, folder)
        info = await asyncio.to_thread(server.engine.load_adapter, body.name, folder, domain=domain)
    except PixiuError as exc:
        raise ApiError(400, str(exc), param="path" if body.path else "name") from exc
    card = model_card(server, body.name)
    return AdapterLoaded(**card.model_dump(), rank=info.rank, load_ms=round(info.load_ms, 2))


@router.delete("/v1/adapters/{name}")
async def unload_adapter(name: str, request: Request) -> AdapterDeleted:
    """Unload adapter `name`; answers once the requests already running on it have finished."""
    server = require_admin(request)
    try:
        done = server.engine.unload_adapter(name)
    except UnknownModel as exc:
        raise unknown_model(server, name) from exc
    await asyncio.wrap_future(done)
    return AdapterDeleted(id=name)


def _adapter_folder(name: str, path: str | None, base: str, *, force: bool) -> Path:
    """The folder to load: `path`, which must lie inside PIXIU_HOME, or the newest `name` trained on `base`
    (with `force`, the newest `name` whatever its base)."""
    if path is None:
        entries = [entry for entry in list_adapters() if entry.name == name]
        if not entries:
            raise ApiError(
                404,
                f"no adapter named {name!r} in the registry; pass `path` or train one first",
                param="name",
                code="adapter_not_found",
            )
        for entry in entries:
            if entry.base == base:
                return Path(entry.path)
        if force:
            return Path(entries[0].path)  # newest first
        trained_on = ", ".join(sorted({entry.base for entry in entries}))
        raise ApiError(
            400,
            f"adapter {name!r} was trained on {trained_on}, but this server serves {base}; "
            'send "force": true to load it anyway',
            param="name",
        )
    home = pixiu_home().resolve()
    try:
        folder = (home / path).resolve()  # an absolute `path` replaces `home`; symlinks and `..` are resolved
    except (OSError, ValueError) as exc:  # e.g. a NUL byte in the path
        raise ApiError(400, f"path is not a usable file system path ({exc})", param="path") from exc
    if not folder.is_relative_to(home) and folder not in {Path(e.path).resolve() for e in list_adapters()}:
        raise ApiError(
            403,
            f"path must lie inside PIXIU_HOME ({home}) or be a registered adapter",
            param="path",
            type="permission_error",
        )
    return folder
