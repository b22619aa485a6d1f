"""`pixiu serve` and `pixiu chat` from the command line."""

import httpx
import pytest
from click.testing import CliRunner

from pixiu.cli import cli
from pixiu.registry import register_adapter
from pixiu.serve.server import adapters_to_serve
from pixiu_process import pixiu_server


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


@pytest.mark.parametrize("command", ["serve", "chat"])
def test_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.output


def test_adapter_option_needs_name_equals_dir():
    result = invoke("serve", "--adapter", "law")
    assert result.exit_code == 2 and "NAME=DIR" in result.output


def test_registry_adapters_are_served_only_on_their_own_base(adapter_dirs, tmp_path):
    register_adapter("law", "law", adapter_dirs["law"], "base-a", {})
    register_adapter("law", "law", adapter_dirs["medical"], "base-b", {})  # newer, but for another base
    register_adapter("zhihu", "zhihu", adapter_dirs["zhihu"], "base-b", {})
    folders, notes = adapters_to_serve("base-a", {"mine": str(adapter_dirs["medical"])}, registry=True)
    assert folders == {"mine": adapter_dirs["medical"], "law": adapter_dirs["law"].resolve()}
    assert notes == ["not serving adapter 'zhihu': trained on base-b, not on base-a"]
    assert adapters_to_serve("base-a", {}, registry=False) == ({}, [])


def test_chat_in_process_streams_answers(tiny_model_dir, adapter_dirs):
    register_adapter("zhihu", "zhihu", adapter_dirs["zhihu"], str(tiny_model_dir), {})
    result = invoke("chat", "zhihu", "--max-tokens", "5", input="你好\n/reset\n再见\n/exit\n")
    assert result.exit_code == 0, result.output
    first, second, end = result.stdout.splitlines()  # input() writes each "> " prompt; /reset prints nothing
    assert first.startswith("> ") and second.startswith("> > ") and end == "> "
    assert len(first) > 2 and len(second) > 4


def test_chat_reports_an_unreachable_server():
    result = invoke("chat", "law", "--url", "http://127.0.0.1:9", input="hi\n")
    assert result.exit_code == 1 and "cannot reach a pixiu server" in result.output


def test_serve_command_answers_over_http(tiny_model_dir, adapter_dirs):
    serve_args = ["--base", str(tiny_model_dir), "--adapter", f"law={adapter_dirs['law']}", "--threads", "1"]
    with pixiu_server(serve_args) as (url, health):
        assert health["adapters"] == ["law"]
        body = {"model": "law", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code == 200


@pytest.mark.parametrize("command", [["serve", "--no-registry"], ["chat", "base"]])
def test_a_missing_device_fails_before_loading(command, monkeypatch):
    import torch

    import pixiu.models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(pixiu.models, "load_base", lambda *a, **k: pytest.fail("loaded before the device was checked"))
    result = invoke(*command, "--device", "cuda:1")
    assert result.exit_code == 1 and "--device cuda:1" in result.output and "--device cpu" in result.output
    assert invoke(*command, "--device", "tpu").exit_code == 2
    fp16 = invoke(*command, "--device", "cpu", "--precision", "fp16")
    assert fp16.exit_code == 1 and "fp16 on the CPU" in fp16.output


def test_chat_in_process_runs_in_bf16(tiny_model_dir, adapter_dirs, monkeypatch):
    import torch

    import pixiu.serve.server

    loaded = []
    real = pixiu.serve.server.start_engine

    def spy(*args, **kwargs):
        engine, tokenizer = real(*args, **kwargs)
        loaded.append(engine.model.dtype)
        return engine, tokenizer

    monkeypatch.setattr(pixiu.serve.server, "start_engine", spy)
    register_adapter("zhihu", "zhihu", adapter_dirs["zhihu"], str(tiny_model_dir), {})
    result = invoke("chat", "zhihu", "--max-tokens", "3", "--device", "cpu", "--precision", "bf16", input="你好\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("> ") and len(result.stdout.splitlines()[0]) > 2  # it answered
    assert loaded == [torch.bfloat16]
