"""`align chat`: a real terminal session, the one-shot mode against plain transformers generation, the kept and reset
conversation, and one-line refusals."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from align.chat import ChatModel, ChatRequest, adapter_base_model, chat_session
from align.cli import main
from tests.conftest import REPO


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter folder on the tiny model, with random (non-zero) weights, so it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model

    from align.models import load_model

    torch.manual_seed(0)
    model = get_peft_model(
        load_model(str(tiny_model_dir), dtype="float32"),
        LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear", init_lora_weights=False),
    )
    folder = tmp_path_factory.mktemp("chat") / "adapter"
    model.save_pretrained(folder)
    return folder


def _reference_answer(model_dir: Path, adapter: Path | None, prompt: str, max_new_tokens: int) -> str:
    """The greedy answer by plain transformers + peft, written independently of align.chat."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def _chat_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "align", "chat", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


class _Terminal:
    """A process on a real pseudo-terminal: `expect(text)` reads its output until `text` shows, `send(line)` types."""

    def __init__(self, cmd: list[str]):
        import pty

        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120.0) -> str:
        """Everything read up to and including the first `text` after what earlier calls consumed."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} in the terminal within {timeout} s; it showed:\n{self.seen[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], min(remaining, 1.0))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process closed the terminal
                    chunk = b""
                assert chunk or self.process.poll() is None, f"exited before {text!r}:\n{self.seen[-2000:]}"
                self.seen += chunk.decode("utf-8", "replace")
        head, _, self.seen = self.seen.partition(text)
        return head + text

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        """The exit code, once the process has ended (killed after 60 s, then failing the test)."""
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            os.close(self.master)


@pytest.mark.slow
def test_interactive_session_in_a_real_terminal(tiny_adapter):
    """On a pseudo-terminal: the prompt shows, a question gets the tuned answer streamed then the base model's under
    its label, /reset answers, /quit exits 0. If this fails, a person at a terminal cannot chat with a result."""
    terminal = _Terminal(_chat_command("--adapter", str(tiny_adapter), "--baseline", "--max-new-tokens", "8"))
    finished = False
    try:
        assert "chatting with" in terminal.expect("you> ")
        terminal.send("How do I list files?")
        terminal.expect("tuned> ")
        tuned = terminal.expect("base> ").removesuffix("base> ")
        terminal.expect("you> ")  # the base model's answer (the random tiny model may end it at once)
        assert tuned.strip(), "the tuned answer was streamed"
        terminal.send("/reset")
        assert "(conversation reset)" in terminal.expect("you> ")
        terminal.send("/quit")
        finished = True
    finally:
        if not finished:
            terminal.process.kill()
        code = terminal.close()
    assert code == 0


@pytest.mark.slow
def test_end_of_input_leaves_with_exit_code_0(tiny_adapter):
    """Ctrl-D (end of input) at the prompt leaves cleanly; if this fails, a piped script or Ctrl-D gets a traceback."""
    result = subprocess.run(
        _chat_command("--adapter", str(tiny_adapter), "--max-new-tokens", "4"),
        input="Hello\n",
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tuned> " in result.stdout and "Traceback" not in result.stderr


@pytest.mark.slow
def test_one_shot_prints_the_greedy_answer(tiny_model_dir, tiny_adapter):
    """`--prompt` prints exactly the greedy answer that plain transformers + peft give with the chat template (and
    exits 0); with `--baseline` the base model's answer too, labelled. If this fails, chat answers something other
    than the tuned model's own answer."""
    prompt, cap = "Explain what a unit test is.", 12
    result = subprocess.run(
        _chat_command("--adapter", str(tiny_adapter), "--prompt", prompt, "--max-new-tokens", str(cap), "--baseline"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    tuned = _reference_answer(tiny_model_dir, tiny_adapter, prompt, cap)
    base = _reference_answer(tiny_model_dir, None, prompt, cap)
    assert tuned != base, "the adapter changes the answer, so the labels are told apart"
    assert result.stdout == f"[tuned]\n{tuned}\n\n[base]\n{base}\n"


@pytest.mark.slow
def test_conversation_is_kept_and_reset(tiny_adapter):
    """A follow-up question is answered with the earlier turns in the context; after /reset the same question gets
    the first answer again. If this fails, chat forgets the conversation or /reset does not clear it."""
    chat = ChatModel(ChatRequest(adapter=str(tiny_adapter), max_new_tokens=6))
    seen: list[list[dict]] = []
    answer = chat.answer

    def recording(messages, emit=None, base=False):
        seen.append([dict(m) for m in messages])
        return answer(messages, emit, base)

    chat.answer = recording
    lines = iter(["What is git?", "And a branch?", "/reset", "What is git?", "/quit"])
    out = io.StringIO()
    assert chat_session(chat, lambda _prompt: next(lines), out) == 0
    assert [len(m) for m in seen] == [1, 3, 1]
    assert seen[1][1]["role"] == "assistant" and seen[1][2]["content"] == "And a branch?"
    first, third = out.getvalue().split("tuned> ")[1], out.getvalue().split("tuned> ")[3]
    assert first.splitlines()[0] == third.splitlines()[0]


def test_base_model_is_the_short_name_of_the_adapters_hub_id(tmp_path):
    """An adapter naming the SmolLM2 Hub id loads align's cached copy (offline); any other name is used as given.
    If this fails, chatting with an exported SmolLM2 adapter needs the Hub."""
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    )
    assert adapter_base_model(tmp_path) == "smollm2-135m-instruct"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/other"}))
    assert adapter_base_model(tmp_path) == "org/other"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["--adapter", "{dir}/missing"], "{dir}/missing: no such folder"),
        ("empty", ["--adapter", "{dir}"], "{dir}: not a PEFT adapter folder (no adapter_config.json)"),
        ("broken", ["--adapter", "{dir}"], "{dir}/adapter_config.json: unreadable"),
        ("nobase", ["--adapter", "{dir}"], "{dir}/adapter_config.json: names no base model; give it with --model"),
        ("gone", ["--adapter", "{dir}"], "{dir}/adapter_config.json: names the base model folder {dir}/gone, which"),
        ("none", ["--adapter", "{dir}/missing", "--model", "x"], "{dir}/missing: no such folder"),
        ("none", ["--model", "tiny-llama", "--baseline"], "--baseline: compares an adapter with its base model"),
        ("none", [], "align chat: give --adapter DIR, --model NAME, or both"),
    ],
    ids=[
        "missing",
        "not-an-adapter",
        "broken-json",
        "no-base",
        "base-not-here",
        "missing-with-model",
        "baseline-without-adapter",
        "nothing",
    ],
)
def test_bad_adapter_or_flags_are_one_line_and_exit_2(tmp_path, capsys, setup, args, message):
    """A missing or broken adapter folder, or flags that cannot work, give one `error:` line and exit code 2 before
    any model loads. If this fails, a typo in a path ends in a traceback."""
    if setup == "empty":
        tmp_path.mkdir(exist_ok=True)
    elif setup == "broken":
        (tmp_path / "adapter_config.json").write_text("{not json")
    elif setup == "gone":
        (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": f"{tmp_path}/gone"}))
    elif setup == "nobase":
        (tmp_path / "adapter_config.json").write_text("{}")
    code = main(["chat", *[a.format(dir=tmp_path) for a in args], "--prompt", "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: " + message.format(dir=tmp_path)) and err.count("\n") == 1, err
