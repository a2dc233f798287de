"""`align data …`: `inspect` (the linter) and `build` (the pair builder). Thin: parse, call, exit code."""

from __future__ import annotations

import argparse


def _cmd_inspect(args) -> int:
    import contextlib
    import json
    import sys

    from align.data.lint import overall_exit_code
    from align.inspect import inspect_target, render_text

    # Libraries print notices on import (transformers: "[INFO] Running in WANDB offline mode"); keep stdout for the
    # report so `--json` output parses.
    with contextlib.redirect_stdout(sys.stderr):
        reports = inspect_target(args.target, args.set, args.format, args.model, args.max_length, args.split)
    code = overall_exit_code(reports)
    if args.json:
        print(json.dumps({"exit_code": code, "sources": [r.to_dict() for r in reports]}, indent=2))
    else:
        print(render_text(reports))
    return code


def _add_inspect(sub) -> None:
    inspect = sub.add_parser(
        "inspect",
        help="lint a data file, or every data source of a recipe",
        description="Read every row and report, per kind of problem, the count and the first rows (line numbers for "
        "JSONL): unreadable line (broken JSON, not UTF-8), missing or empty field, wrong type, chosen identical to "
        "rejected, duplicate rows, rows over max_length after tokenisation. Then statistics: length distributions "
        "of prompt/chosen/rejected, the share of pairs whose chosen is shorter, label counts and the concise "
        "scorer's summaries. Given a recipe, every source of every stage is checked with the recipe's tokenizer and "
        "the stage's max_length. Exit 0 clean, 1 problems found, 2 unreadable input.",
    )
    inspect.add_argument("target", metavar="PATH_OR_RECIPE", help="a data file, save_to_disk folder, Hub id, or a "
                         "YAML recipe")  # fmt: skip
    inspect.add_argument("--json", action="store_true", help="print the reports as JSON")
    inspect.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    inspect.add_argument("--format", default="auto", help="row format of a data file (auto, standard, "
                         "conversational, implicit_prompt, scored, completion); default auto")  # fmt: skip
    inspect.add_argument("--model", help="measure lengths in this model's tokens (a recipe defaults to its own "
                         "model; a data file to words unless --max-length is given)")  # fmt: skip
    inspect.add_argument("--max-length", type=int, metavar="N", help="report rows longer than N tokens (data file)")
    inspect.add_argument("--split", default="train", help="split of a save_to_disk folder or Hub dataset")
    inspect.set_defaults(func=_cmd_inspect)


def add_data(sub) -> None:
    """The `align data` command group."""
    data = sub.add_parser("data", help="inspect and build preference data", description="Data tools: `inspect` "
                          "lints data, `build` turns scored or multi-answer data into preference pairs.")  # fmt: skip
    group = data.add_subparsers(dest="data_command", metavar="COMMAND", parser_class=type(data))
    _add_inspect(group)
    data.set_defaults(func=lambda args: _data_help(data))


def _data_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
