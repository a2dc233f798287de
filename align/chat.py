"""`align chat`: talk to a tuned adapter (or a base model) with its chat template, the answer streamed as it is
generated; with `baseline` the base model answers the same conversation too, for comparison.

The conversation keeps every turn (the tuned model's answers, not the base model's), so follow-up questions work as
they would in an application; `/reset` starts it again.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from align.errors import AlignError, Problem

ADAPTER_CONFIG = "adapter_config.json"
COMMANDS = {"/reset": "forget the conversation", "/quit": "leave (so does Ctrl-D)", "/help": "list the commands"}


@dataclass(frozen=True)
class ChatRequest:
    """What to chat with: an adapter folder and/or a base model (short name, folder or Hub id; default the adapter's
    own base model), and how answers are generated: greedy when `temperature` is 0, at most `max_new_tokens`."""

    adapter: str | None = None
    model: str | None = None
    baseline: bool = False
    temperature: float = 0.0
    max_new_tokens: int = 512


def _adapter_config(adapter: Path) -> dict:
    """The folder's `adapter_config.json`; a missing folder or file, or one that is not JSON, is a user error."""
    try:
        config = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        what = "no such folder" if not adapter.exists() else f"not a PEFT adapter folder (no {ADAPTER_CONFIG})"
        raise AlignError(Problem(str(adapter), what)) from None
    except (OSError, ValueError) as exc:
        raise AlignError(Problem(str(adapter / ADAPTER_CONFIG), f"unreadable: {exc}")) from None
    if not isinstance(config, dict):
        raise AlignError(Problem(str(adapter / ADAPTER_CONFIG), "unreadable: not a JSON object"))
    return config


def adapter_base_model(adapter: Path) -> str:
    """The base model `adapter`'s `adapter_config.json` names, as align loads it: a Hub id that one of align's short
    names copies (SmolLM2) becomes that short name, so it loads from align's cache without the Hub. A folder it names
    that is not on this machine is an error that says to give the base model with --model."""
    from align.models import short_name_for_hub_id

    named = _adapter_config(adapter).get("base_model_name_or_path")
    if not isinstance(named, str) or not named:
        raise AlignError(Problem(str(adapter / ADAPTER_CONFIG), "names no base model; give it with --model"))
    if named.startswith(("/", ".", "~")) and not Path(named).expanduser().exists():
        # A folder on the machine that trained it (a built-in model's cache, or a local model) that is not here.
        message = f"names the base model folder {named}, which is not on this machine; give the base with --model"
        raise AlignError(Problem(str(adapter / ADAPTER_CONFIG), message))
    return short_name_for_hub_id(named) or named


def _streamer(tokenizer, emit: Callable[[str], None]):
    """A transformers `TextStreamer` whose finished pieces of text go to `emit` instead of stdout."""
    from transformers import TextStreamer

    class Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            emit(text)

    return Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


class ChatModel:
    """The model and tokenizer `request` names, loaded once; `answer(messages)` generates the next assistant turn."""

    def __init__(self, request: ChatRequest):
        if request.adapter is None and request.model is None:
            raise AlignError(Problem("align chat", "give --adapter DIR, --model NAME, or both"))
        if request.baseline and request.adapter is None:
            raise AlignError(Problem("--baseline", "compares an adapter with its base model: give --adapter DIR"))
        if request.temperature < 0 or request.max_new_tokens <= 0:
            raise AlignError(Problem("--temperature/--max-new-tokens", "need temperature ≥ 0 and a positive cap"))
        adapter = Path(request.adapter).expanduser() if request.adapter else None
        if adapter is not None and request.model is not None:
            _adapter_config(adapter)  # the folder is checked before any model loads
        self.model_name = request.model or adapter_base_model(adapter)
        self.request = request
        import torch
        from transformers.utils import logging as transformers_logging

        from align.models import load_model, load_tokenizer

        transformers_logging.disable_progress_bar()  # a chat window shows the conversation, not weight loading
        self.tokenizer = load_tokenizer(self.model_name)
        model = load_model(self.model_name)
        if adapter is not None:
            model = _with_adapter(model, adapter, self.model_name)
        self.model = model.to("cuda") if torch.cuda.is_available() else model
        self.model.eval()

    @property
    def has_adapter(self) -> bool:
        return self.request.adapter is not None

    def answer(self, messages: list[dict], emit: Callable[[str], None] | None = None, base: bool = False) -> str:
        """The next assistant turn after `messages` (`{"role", "content"}` dicts), its text pieces passed to `emit`
        as they are generated; `base`: with the adapter switched off."""
        import contextlib

        import torch

        inputs = _chat_inputs(self.tokenizer, messages).to(next(self.model.parameters()).device)
        temperature = self.request.temperature
        sampling = {"do_sample": True, "temperature": temperature} if temperature else {"do_sample": False}
        off = self.model.disable_adapter() if base else contextlib.nullcontext()
        with torch.no_grad(), off:
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.request.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                streamer=_streamer(self.tokenizer, emit) if emit else None,
                **sampling,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def _with_adapter(model, adapter: Path, model_name: str):
    """`model` with the adapter folder loaded; an adapter that does not fit the model is a user error."""
    from peft import PeftModel

    try:
        with warnings.catch_warnings():
            # peft's loading calls transformers names deprecated for v6: noise in a chat window, not news.
            warnings.simplefilter("ignore", FutureWarning)
            return PeftModel.from_pretrained(model, str(adapter))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AlignError(Problem(str(adapter), f"does not load onto {model_name}: {first[:200]}")) from None


def _chat_inputs(tokenizer, messages: list[dict]):
    """The conversation as token ids, ending with the assistant's generation prompt (plain text without a chat
    template)."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n\n".join(m["content"] for m in messages)
    return tokenizer(text, return_tensors="pt", add_special_tokens=not tokenizer.chat_template)


def _answerers(chat: ChatModel) -> list[tuple[str, bool]]:
    """Who answers each question, in order, as (label, adapter off): the tuned model (or the plain model without an
    adapter), then with a baseline the base model."""
    first = ("tuned" if chat.has_adapter else "model", False)
    return [first, ("base", True)] if chat.request.baseline else [first]


def answer_once(chat: ChatModel, prompt: str, out: TextIO | None = None) -> list[str]:
    """Answer one prompt and print it to `out` (stdout): the answer alone, or with a baseline the tuned and base
    answers each under its `[label]`, a blank line between. Streams only to a terminal. Returns the answers."""
    out = out if out is not None else sys.stdout
    messages = [{"role": "user", "content": prompt}]
    emit = (lambda text: print(text, end="", file=out, flush=True)) if out.isatty() else None
    answers = []
    for label, base in _answerers(chat):
        if chat.request.baseline:
            print(f"\n[{label}]" if answers else f"[{label}]", file=out, flush=True)
        answers.append(chat.answer(messages, emit, base=base))
        print("" if emit else answers[-1], file=out, flush=True)
    return answers


def chat_session(chat: ChatModel, read: Callable[[str], str] = input, out: TextIO | None = None) -> int:
    """The interactive loop on `out` (stdout): read a line, stream the answer (then the base model's with a
    baseline); `/reset`, `/quit`, `/help`; end of input (Ctrl-D) leaves; Ctrl-C stops an answer. Returns the exit
    code, 0."""
    out = out if out is not None else sys.stdout
    what = f"{chat.model_name} with adapter {chat.request.adapter}" if chat.has_adapter else chat.model_name
    print(f"chatting with {what}; /reset forgets the conversation, /quit or Ctrl-D leaves", file=out, flush=True)
    messages: list[dict] = []
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            print(file=out, flush=True)
            return 0
        if line in ("/quit", "/exit"):
            return 0
        if line == "/reset":
            messages = []
            print("(conversation reset)", file=out, flush=True)
            continue
        if line == "/help":
            print("\n".join(f"{name}  {doc}" for name, doc in COMMANDS.items()), file=out, flush=True)
            continue
        if not line:
            continue
        try:
            messages += _turn(chat, messages + [{"role": "user", "content": line}], out)
        except KeyboardInterrupt:  # Ctrl-C stops an answer, not the chat; the unanswered question is dropped
            print("\n(stopped)", file=out, flush=True)


def _turn(chat: ChatModel, messages: list[dict], out: TextIO) -> list[dict]:
    """Stream the answer to the conversation `messages` (then the base model's, with a baseline); return the
    messages the conversation keeps: the question and the tuned model's answer."""
    kept = messages[-1:]
    for label, base in _answerers(chat):
        print(f"{label}> ", end="", file=out, flush=True)
        text = chat.answer(messages, lambda piece: print(piece, end="", file=out, flush=True), base=base)
        print(file=out, flush=True)
        if not base:
            kept.append({"role": "assistant", "content": text})
    return kept
