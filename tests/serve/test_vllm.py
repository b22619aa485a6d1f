"""The vLLM hand-off: adapters vLLM would load, the command pixiu runs, and the proxy that keeps process_response."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

import toy_domain
from pixiu import hookimpl
from pixiu.cli import cli
from pixiu.errors import PixiuError
from pixiu.serve.proxy import build_proxy
from pixiu.serve.server import background_server
from pixiu.serve.vllm import check_adapter_for_vllm, max_lora_rank, require_vllm, vllm_command
from pixiu_process import TINY_TRAIN


@pytest.fixture
def trained_adapter(toy_plugin, tiny_model_dir, tmp_path):
    """An adapter trained by `pixiu domain train toy` on the tiny model (seconds)."""
    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 20)
    run_dir = tmp_path / "run"
    args = ["domain", "train", "toy", "--base", str(tiny_model_dir), "--data", str(data), "--output", str(run_dir)]
    result = CliRunner().invoke(cli, [*args, *TINY_TRAIN])
    assert result.exit_code == 0, result.output
    return run_dir


def test_a_pixiu_trained_adapter_has_what_vllm_reads(trained_adapter, tiny_model_dir):
    config = json.loads((trained_adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert isinstance(config["r"], int) and config["lora_alpha"] and config["target_modules"]
    assert config["use_dora"] is False and not config.get("modules_to_save") and config["bias"] == "none"
    assert config["base_model_name_or_path"] == str(tiny_model_dir)
    keys = load_file(str(trained_adapter / "adapter_model.safetensors"))
    assert keys and all(k.startswith("base_model.model.") for k in keys)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    assert check_adapter_for_vllm(trained_adapter) == config["r"]


def _edited(folder, tmp_path, config=None, weights=None):
    """A copy of the adapter in `folder` with `config` fields set and `weights` (name -> tensor) added."""
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy)
    if config:
        path = copy / "adapter_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **config}), encoding="utf-8")
    if weights:
        state = load_file(str(copy / "adapter_model.safetensors"))
        save_file({**state, **weights}, str(copy / "adapter_model.safetensors"))
    return copy


@pytest.mark.parametrize(
    ("config", "weights", "message"),
    [
        ({"use_dora": True}, None, "vLLM does not support DoRA"),
        ({"modules_to_save": ["lm_head"]}, None, "modules_to_save is ['lm_head']"),
        ({"bias": "all"}, None, "bias is 'all'"),
        ({"rank_pattern": {"q_proj": 2}}, None, "rank_pattern is set"),
        ({"peft_type": "IA3"}, None, "peft_type is 'IA3'"),
        ({"r": 1024}, None, "ranks up to 512"),
        (None, {"base_model.model.lm_head.weight": torch.zeros(2, 2)}, "is not a LoRA matrix"),
        (None, {"model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(8, 64)}, "does not start with"),
        (None, {"base_model.model.model.layers.0.mlp.up_proj.lora_A.default.weight": torch.zeros(8, 4)}, "LoRA matrix"),
    ],
)
def test_what_vllm_refuses_is_refused(adapter_dirs, tmp_path, config, weights, message):
    folder = _edited(adapter_dirs["law"], tmp_path, config, weights)
    with pytest.raises(PixiuError, match="vLLM would refuse") as caught:
        check_adapter_for_vllm(folder)
    assert message in str(caught.value)


def test_missing_fields_and_files_are_named(adapter_dirs, tmp_path):
    folder = _edited(adapter_dirs["law"], tmp_path)
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    del config["lora_alpha"], config["target_modules"]
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(PixiuError, match=r"no 'lora_alpha'.*\n.*no 'target_modules'"):
        check_adapter_for_vllm(folder)
    with pytest.raises(PixiuError, match="not a LoRA adapter folder"):
        check_adapter_for_vllm(tmp_path)


def test_rank_mismatch_between_config_and_weights_is_refused(adapter_dirs, tmp_path):
    rank = json.loads((adapter_dirs["law"] / "adapter_config.json").read_text(encoding="utf-8"))["r"]
    with pytest.raises(PixiuError, match=f"not rank r={rank + 1}"):
        check_adapter_for_vllm(_edited(adapter_dirs["law"], tmp_path, {"r": rank + 1}))


def test_max_lora_rank_is_the_smallest_value_vllm_takes():
    assert [max_lora_rank(r) for r in ([4], [8], [4, 9], [200], [])] == [8, 8, 16, 256, 1]
    with pytest.raises(PixiuError, match="over vLLM's largest"):
        max_lora_rank([513])


def test_vllm_command_line(tmp_path):
    law, med = tmp_path / "law", tmp_path / "med"
    command = vllm_command("/models/base", {"law": law, "med": med}, [4, 16], host="127.0.0.1", port=8123)
    assert command[:3] == ["vllm", "serve", "/models/base"]
    flags = {flag: command[i + 1] for i, flag in enumerate(command) if flag.startswith("--")}
    assert flags["--served-model-name"] == "base" and flags["--port"] == "8123" and flags["--host"] == "127.0.0.1"
    assert flags["--max-lora-rank"] == "16" and flags["--max-loras"] == "2" and flags["--dtype"] == "auto"
    assert "--enable-lora" in command
    assert command[command.index("--lora-modules") + 1 :][:2] == [f"law={law.resolve()}", f"med={med.resolve()}"]
    plain = vllm_command("org/model", {}, [], host="0.0.0.0", port=1, precision="bf16", extra=("--seed", "3"))
    assert "--enable-lora" not in plain and "--lora-modules" not in plain
    assert plain[plain.index("--dtype") + 1] == "bfloat16" and plain[-2:] == ["--seed", "3"]


def test_serve_print_command_resolves_the_base_and_checks_adapters(tiny_model_dir, adapter_dirs, tmp_path):
    args = ["serve", "--engine", "vllm", "--print-command", "--no-registry", "--base", str(tiny_model_dir)]
    result = CliRunner().invoke(cli, [*args, "--adapter", f"law={adapter_dirs['law']}"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"vllm serve {tiny_model_dir} ") and f"law={adapter_dirs['law']}" in result.stdout
    dora = _edited(adapter_dirs["law"], tmp_path, {"use_dora": True})
    refused = CliRunner().invoke(cli, [*args, "--adapter", f"law={dora}"])
    assert refused.exit_code == 1 and "vLLM does not support DoRA" in refused.output
    on_cpu = CliRunner().invoke(cli, [*args, "--device", "cpu"])
    assert on_cpu.exit_code == 2 and "NVIDIA GPUs" in on_cpu.output


def test_missing_vllm_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PixiuError, match=r"pip install 'pixiu\[vllm\]'"):
        require_vllm()


HEALTHY = """
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_start_vllm_waits_for_health_and_stop_ends_it():
    from pixiu.serve.server import free_port
    from pixiu.serve.vllm import start_vllm, stop_vllm

    port = free_port()
    process = start_vllm([sys.executable, "-c", HEALTHY, str(port)], f"http://127.0.0.1:{port}", timeout=60)
    try:
        assert process.poll() is None and httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        stop_vllm(process)
    assert process.returncode is not None
    with pytest.raises(PixiuError, match="vLLM exited with status 3 while starting"):
        start_vllm([sys.executable, "-c", "raise SystemExit(3)"], f"http://127.0.0.1:{free_port()}", timeout=60)


# ---- the proxy -------------------------------------------------------------------------------------

ANSWER = ["你好", "，世界"]


def fake_vllm() -> Starlette:
    """An OpenAI-compatible upstream: says ANSWER, whole or in chunks, and echoes the model it was asked for."""

    async def chat(request: Request):
        body = await request.json()
        if body["model"] == "missing":
            return JSONResponse({"error": {"message": "The model `missing` does not exist."}}, status_code=404)
        finish = "length" if body.get("max_tokens") == 2 else "stop"  # ANSWER is two tokens
        usage = {"prompt_tokens": 3, "completion_tokens": len(ANSWER), "total_tokens": 3 + len(ANSWER)}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(ANSWER)}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return JSONResponse({"model": body["model"], "choices": [choice], "usage": usage})

        def chunk(delta, finish=None):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return f"data: {json.dumps({'model': body['model'], 'choices': [choice]}, ensure_ascii=False)}\n\n"

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            for piece in ANSWER:
                yield chunk({"content": piece})
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps({'model': body['model'], 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def completions(request: Request):
        return JSONResponse({"choices": [{"index": 0, "text": "".join(ANSWER)}]})

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "base"}, {"id": "zhihu"}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
        ]
    )


class Disclaimer:
    """zhihu answers get a disclaimer appended; the rewrite sees the adapter's domain, not its served name."""

    @staticmethod
    @hookimpl
    def process_response(domain, text, adapter):
        return text + "（仅供参考）" if domain == "zhihu" else None


@contextmanager
def fake_upstream_and_proxy(domains: dict[str, str | None], tokenizer) -> Iterator[str]:
    """The URL of a proxy for `domains` in front of `fake_vllm`."""
    with (
        background_server(fake_vllm()) as upstream,
        background_server(build_proxy(upstream, domains, tokenizer)) as url,
    ):
        yield url


def streamed(response: httpx.Response) -> tuple[str, list[dict]]:
    """The content a stream carried, and its chunks."""
    chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    assert response.text.rstrip().endswith("data: [DONE]")
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]), chunks


def test_proxy_applies_process_response_to_the_upstream_answers(register_plugin, tokenizer):
    register_plugin(Disclaimer, "disclaimer")
    domains = {"zh-v2": "zhihu", "law": "law"}
    with fake_upstream_and_proxy(domains, tokenizer) as proxy:
        ask = {"messages": [{"role": "user", "content": "hi"}]}
        whole = httpx.post(f"{proxy}/v1/chat/completions", json={**ask, "model": "zh-v2"}).json()
        assert whole["model"] == "zh-v2"
        assert whole["choices"][0]["message"]["content"] == "你好，世界（仅供参考）"
        stream = httpx.post(f"{proxy}/v1/chat/completions", json={**ask, "model": "zh-v2", "stream": True})
        assert stream.headers["content-type"].startswith("text/event-stream")
        text, chunks = streamed(stream)
        assert text == "你好，世界（仅供参考）"
        last = {"index": 0, "delta": {"content": "（仅供参考）"}, "finish_reason": "stop"}
        assert chunks[-1]["choices"][0] == last  # the addition rides on the finishing chunk
        for model in ("law", "base"):  # another domain, and the base: unchanged
            answer = httpx.post(f"{proxy}/v1/chat/completions", json={**ask, "model": model}).json()
            assert answer["choices"][0]["message"]["content"] == "你好，世界"
        completion = httpx.post(f"{proxy}/v1/completions", json={"model": "zh-v2", "prompt": "hi"}).json()
        assert completion["choices"][0]["text"] == "你好，世界"  # text completions are never rewritten
        assert [m["id"] for m in httpx.get(f"{proxy}/v1/models").json()["data"]] == ["base", "zhihu"]
        missing = httpx.post(f"{proxy}/v1/chat/completions", json={**ask, "model": "missing"})
        assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]


class CutMark:
    """Marks zhihu answers the upstream cut at max_tokens, from the finish reason the proxy passes on."""

    @staticmethod
    @hookimpl
    def process_response(domain, text, adapter, finish_reason):
        return text + "……" if domain == "zhihu" and finish_reason == "length" else None


def test_proxy_passes_the_finish_reason_and_counts_the_addition_in_usage(register_plugin, tokenizer):
    register_plugin(CutMark, "cut-mark")
    mark = len(tokenizer("……", add_special_tokens=False)["input_ids"])
    with fake_upstream_and_proxy({"zh": "zhihu"}, tokenizer) as proxy:
        for max_tokens, expected, added in [(2, "你好，世界……", mark), (16, "你好，世界", 0)]:
            ask = {"model": "zh", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
            whole = httpx.post(f"{proxy}/v1/chat/completions", json=ask).json()
            assert whole["choices"][0]["message"]["content"] == expected
            assert whole["usage"] == {"prompt_tokens": 3, "completion_tokens": 2 + added, "total_tokens": 5 + added}
            stream = {**ask, "stream": True, "stream_options": {"include_usage": True}}
            text, chunks = streamed(httpx.post(f"{proxy}/v1/chat/completions", json=stream))
            assert text == expected and chunks[-1]["usage"] == whole["usage"]


def test_proxy_reports_an_upstream_that_is_gone():
    with background_server(build_proxy("http://127.0.0.1:9", {}, tokenizer=None)) as proxy:
        response = httpx.get(f"{proxy}/v1/models")
    assert response.status_code == 502 and "cannot be reached" in response.json()["error"]["message"]


@pytest.mark.gpu
def test_real_vllm_serves_a_pixiu_adapter_through_the_proxy(tiny_model_dir, adapter_dirs, register_plugin, tokenizer):
    """Launch real vLLM with the tiny base and an adapter, and chat with it through the proxy."""
    pytest.importorskip("vllm")
    if not torch.cuda.is_available() or shutil.which("vllm") is None:
        pytest.skip("needs vLLM and a CUDA GPU")
    from pixiu.serve.server import free_port
    from pixiu.serve.vllm import start_vllm, stop_vllm

    register_plugin(Disclaimer, "disclaimer")
    port = free_port()
    rank = check_adapter_for_vllm(adapter_dirs["zhihu"])
    extra = ("--max-model-len", "256", "--gpu-memory-utilization", "0.3", "--enforce-eager")
    command = vllm_command(
        str(tiny_model_dir), {"zhihu": adapter_dirs["zhihu"]}, [rank], host="127.0.0.1", port=port, extra=extra
    )
    process = start_vllm(command, f"http://127.0.0.1:{port}", timeout=600)
    try:
        with background_server(build_proxy(f"http://127.0.0.1:{port}", {"zhihu": "zhihu"}, tokenizer)) as proxy:
            ids = {m["id"] for m in httpx.get(f"{proxy}/v1/models", timeout=30).json()["data"]}
            assert {"base", "zhihu"} <= ids
            ask = {"model": "zhihu", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            answer = httpx.post(f"{proxy}/v1/chat/completions", json=ask, timeout=120).json()
            assert answer["choices"][0]["message"]["content"].endswith("（仅供参考）")
    finally:
        stop_vllm(process)
    assert process.returncode is not None  # stopped, not left running
