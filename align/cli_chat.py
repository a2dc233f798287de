"""`align chat`: an interactive, streaming chat with a tuned adapter (or a base model); `--prompt` answers once.
Thin: parse, call."""

from __future__ import annotations

import argparse


def _cmd_chat(args) -> int:
    import sys

    from align.chat import ChatModel, ChatRequest, answer_once, chat_session

    request = ChatRequest(args.adapter, args.model, args.baseline, args.temperature, args.max_new_tokens)
    chat = ChatModel(request)
    if args.prompt is not None:
        answer_once(chat, args.prompt)
        return 0
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())
    return chat_session(chat)


def add_chat(sub) -> None:
    chat = sub.add_parser(
        "chat",
        help="chat with a tuned adapter (or a base model) in the terminal",
        description="Chat with ADAPTER on its base model, with the model's chat template; each answer is streamed "
        "as it is generated and the conversation is kept (/reset forgets it, /quit or Ctrl-D leaves, Ctrl-C stops "
        "an answer). --baseline: the base model also answers, under its own label. --prompt TEXT: answer once, "
        "print and exit (for scripts).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    chat.add_argument("--adapter", metavar="DIR", help="a PEFT adapter folder (e.g. OUTPUT/<stage>/adapter)")
    chat.add_argument(
        "--model",
        metavar="NAME",
        help="the base model (short name, folder or Hub id); default: the one the adapter names",
    )
    chat.add_argument("--baseline", action="store_true", help="also answer with the base model (needs --adapter)")
    chat.add_argument("--prompt", metavar="TEXT", help="answer this one prompt, print the answer and exit")
    chat.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy")
    chat.add_argument("--max-new-tokens", type=int, default=512, metavar="N", help="answer length cap in tokens")
    chat.set_defaults(func=_cmd_chat)
