"""A server safe on a public interface: slow or idle connections are closed, and shutdown does not wait forever."""

import socket
import threading
import time

import httpx

from pixiu.serve.guard import Timeouts
from pixiu.serve.server import background_server

SHORT = Timeouts(read=0.5, keep_alive=1, shutdown=1)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (what it sent before closing is ignored)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_idle_and_half_sent_connections_are_closed(make_app, engine):
    with background_server(make_app(engine), timeouts=SHORT) as url:
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        idle = socket.create_connection(address)
        half_head = socket.create_connection(address)
        half_head.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        half_body = socket.create_connection(address)
        half_body.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"model":'
        )
        started = time.monotonic()
        assert all(closed_within(s, 5) for s in (idle, half_head, half_body))
        assert time.monotonic() - started < 3
        with httpx.Client(timeout=10) as client:  # a prompt client is served, and its idle keep-alive ends
            assert client.get(f"{url}/health").status_code == 200
        for s in (idle, half_head, half_body):
            s.close()


def test_a_slow_answer_is_not_cut_by_the_read_timeout(make_app, engine):
    with background_server(make_app(engine, max_tokens=1000), timeouts=SHORT) as url:
        body = {"model": "zhihu", "prompt": "hi", "max_tokens": 400, "logit_bias": {"100": 100}}
        response = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
        assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] == 400


def test_shutdown_cuts_open_streams_after_its_timeout(make_app, engine):
    body = {"model": "zhihu", "prompt": "hi", "max_tokens": 1000, "logit_bias": {"100": 100}, "stream": True}
    started = threading.Event()

    def stream(url):
        try:
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
                for _ in response.iter_lines():
                    started.set()
        except httpx.HTTPError:
            pass

    with background_server(make_app(engine, max_tokens=1000), timeouts=SHORT) as url:
        reader = threading.Thread(target=stream, args=(url,), daemon=True)
        reader.start()
        assert started.wait(30)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < SHORT.shutdown + 3
    reader.join(10)
    assert not reader.is_alive()
