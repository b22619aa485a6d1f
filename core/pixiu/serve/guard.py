"""uvicorn settings that make `pixiu serve` safe on a public interface: bounded reads, idle time and shutdown.

uvicorn bounds only the idle time *after* a response (`timeout_keep_alive`): a connection that never
sends a request, or sends half its headers or body, is held forever. `ReadDeadline` closes a connection
that has not delivered a whole request within `read_timeout` seconds of opening or of its last response.
h11 already refuses request heads over `h11_max_incomplete_event_size` bytes, and `BodyLimit` big bodies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class Timeouts:
    """How long the HTTP server waits, in seconds."""

    read: float = 10.0
    """For a whole request (head and body) to arrive after the connection opens or the last response ends."""
    keep_alive: int = 5
    """For the next request on an idle keep-alive connection."""
    shutdown: int = 10
    """For open requests and streams to finish once shutdown begins; then they are cut."""


class ReadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing connections that are too slow to send a request."""

    read_timeout = Timeouts.read

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request."""
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        """Stop the clock once the whole request is in."""
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        """Restart the clock for the next request."""
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._stop()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Run the clock while a request is awaited or half received; stop it once one is complete."""
        reading = self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing()
        if not reading:
            self._stop()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _stop(self) -> None:
        """Cancel the clock."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """Close the connection: the client took too long to send its request."""
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app, *, host: str, port: int = 0, timeouts: Timeouts = Timeouts(), log_level: str = "info"):
    """A `uvicorn.Config` for `app` with every read, idle and shutdown wait bounded by `timeouts`."""
    import uvicorn

    protocol = type("ReadDeadline", (ReadDeadline,), {"read_timeout": timeouts.read})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level=log_level,
        timeout_keep_alive=timeouts.keep_alive,
        timeout_graceful_shutdown=timeouts.shutdown,
    )
