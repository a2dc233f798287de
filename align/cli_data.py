"""`align data …`: `inspect` (the linter) and `build` (the pair builder). Thin: parse, call, exit code."""

from __future__ import annotations

import argparse


def _cmd_inspect(args) -> int:
    import contextlib
    import json
    import sys

    from align.data.lint import overall_exit_code
    from align.inspect_data import inspect_target, render_text

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
    inspect.add_argument(
        "target", metavar="PATH_OR_RECIPE", help="a data file, save_to_disk folder, Hub id, or a YAML recipe"
    )
    inspect.add_argument("--json", action="store_true", help="print the reports as JSON")
    inspect.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    inspect.add_argument(
        "--format",
        default="auto",
        help="row format of a data file (auto, standard, "
        "conversational, implicit_prompt, scored, completion, kto); default auto",
    )
    inspect.add_argument(
        "--model",
        help="measure lengths in this model's tokens (a recipe defaults to its own "
        "model; a data file to words unless --max-length is given)",
    )
    inspect.add_argument("--max-length", type=int, metavar="N", help="report rows longer than N tokens (data file)")
    inspect.add_argument("--split", default="train", help="split of a save_to_disk folder or Hub dataset")
    inspect.set_defaults(func=_cmd_inspect)


def _key_values(pairs: list[str], flag: str, number: bool = False) -> dict:
    """`["a=b", ...]` → `{"a": "b"}` (values as floats when `number`), naming the flag on a malformed item."""
    from align.errors import AlignError, Problem

    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key or not value:
                raise ValueError
            out[key] = float(value) if number else value
        except ValueError:
            raise AlignError(Problem(flag, f"{item!r}: give NAME=VALUE{' (a number)' if number else ''}")) from None
    return out


def _thresholds(text: str | None):
    from align.errors import AlignError, Problem

    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise AlignError(Problem("--difficulty-thresholds", f"{text!r}: give LO,HI, e.g. 0.1,0.3")) from None
    return (low, high)


def _vllm_options(pairs: list[str]) -> dict:
    """`--vllm NAME=VALUE` items as vLLM engine arguments, each value read as YAML (`0.3`, `true`, `auto`)."""
    import yaml

    return {name: yaml.safe_load(value) for name, value in _key_values(pairs, "--vllm").items()}


def _cmd_sample(args) -> int:
    """`data build --sample-from MODEL`: INPUT is a prompts file; the rows come from the model's sampled answers."""
    from align.on_policy.command import SampleRequest, report_text, sample_and_build
    from align.recipe.schema import GenerateConfig
    from align.scorers import parse_scorer_weights

    settings = GenerateConfig(
        prompts=args.input,
        columns=_key_values(args.column, "--column"),
        max_prompts=args.limit,
        samples=args.samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        backend=args.backend,
        vllm=_vllm_options(args.vllm),
        scorers=parse_scorer_weights(args.scorer or ["concise"]),
        reward_model=args.reward_model,
        min_margin=args.min_margin,
        min_chosen_score=0.5 if args.min_chosen_score is None else args.min_chosen_score,
        include_reference=not args.no_reference,
        include_greedy=args.greedy,
        loop_pairs=args.loop_pairs,
        max_pairs_per_prompt=args.max_pairs_per_prompt,
        negatives=args.negatives,
    )
    request = SampleRequest(args.sample_from, args.adapter, args.rows, args.seed)
    print(report_text(sample_and_build(settings, request, args.output)))
    return 0


def _cmd_build(args) -> int:
    from align.data.pair_builder import BuildOptions, write_pairs
    from align.scorers import ScorerSettings, parse_scorer_weights

    if args.sample_from:
        return _cmd_sample(args)
    if args.adapter:
        from align.errors import AlignError, Problem

        raise AlignError(Problem("--adapter", "samples answers with an adapter: give --sample-from MODEL too"))

    options = BuildOptions(
        scorers=parse_scorer_weights(args.scorer or ["concise"]),
        scorer_settings=ScorerSettings(reward_model=args.reward_model, max_length=args.reward_max_length),
        score=args.score,
        score_key=args.score_key,
        score_weights=_key_values(args.score_weight, "--score-weight", number=True) or None,
        min_margin=args.min_margin,
        max_pairs_per_prompt=args.max_pairs_per_prompt,
        max_length_ratio=args.max_length_ratio,
        max_chosen_shorter_share=args.max_chosen_shorter_share,
        difficulty_thresholds=_thresholds(args.difficulty_thresholds),
        negatives=args.negatives,
        min_chosen_score=args.min_chosen_score,
    )
    columns = _key_values(args.column, "--column")
    report = write_pairs(
        args.input, args.output, options, columns=columns, split=args.split, drop_bad_rows=args.drop_bad_rows
    )
    print(report.to_text())
    return 0


def _add_build(sub) -> None:
    build = sub.add_parser(
        "build",
        help="build preference pairs from scored or multi-answer data",
        description="Read rows with a prompt and `completions` (two or more answers: scored {text, score} objects, "
        "or plain answers that align's concise scorer ranks, using a `key_points` column when present) and write "
        "preference pairs that favour the concise, actionable, complete answer, with `margin`, `difficulty` "
        "(easy/medium/hard by margin) and `kind` (verbose/vague/incomplete/other) columns for recipes to filter and "
        "order by. Writes OUTPUT (JSONL) and OUTPUT's .report.json; every candidate pair not written is counted by "
        "reason.",
    )
    build.add_argument("input", metavar="INPUT", help="a data file, save_to_disk folder or Hub id")
    build.add_argument("-o", "--output", required=True, metavar="OUTPUT.jsonl", help="where the pairs go")
    build.add_argument(
        "--score",
        choices=("data", "concise", "both"),
        default="data",
        help="rank by the data's "
        "scores, align's scorers (--scorer; the concise score by default), or the data's scores where align's "
        "scorers agree (default data; unscored input always uses align's scorers)",
    )
    build.add_argument(
        "--scorer",
        action="append",
        default=[],
        metavar="NAME[=WEIGHT]",
        help="one of align's scorers, repeatable: concise (default) or reward_model (needs --reward-model); several "
        "are z-scored within each prompt's answers and combined by weight (default 1)",
    )
    build.add_argument(
        "--reward-model",
        metavar="PATH_OR_ID",
        help="the reward_model scorer's model: a local folder or Hub id of a sequence-classification model",
    )
    build.add_argument(
        "--reward-max-length",
        type=int,
        default=1024,
        metavar="N",
        help="most tokens of prompt + answer the reward model reads; longer is an error (default 1024)",
    )
    build.add_argument("--score-key", help="which named score ranks completions with several")
    build.add_argument(
        "--score-weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help="rank by a weighted sum of named scores (repeatable)",
    )
    build.add_argument("--min-margin", type=float, default=0.0, help="least score difference of a pair (default 0)")
    build.add_argument("--max-pairs-per-prompt", type=int, metavar="N", help="keep at most N pairs per prompt")
    build.add_argument(
        "--max-length-ratio",
        type=float,
        metavar="R",
        help="skip pairs whose longer answer has more than R times the words of the shorter",
    )
    build.add_argument(
        "--max-chosen-shorter-share",
        type=float,
        metavar="S",
        help="at most this share of rows may choose the shorter answer (lowest margins dropped first)",
    )
    build.add_argument(
        "--difficulty-thresholds",
        metavar="LO,HI",
        help="margin >= HI easy, < LO hard (default: tertiles of the margins)",
    )
    build.add_argument(
        "--negatives",
        type=int,
        default=1,
        metavar="K",
        help="K > 1: one row per prompt, its best answer against K rejected answers",
    )
    build.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="map a column: prompt=question, completions=answers (repeatable)",
    )
    build.add_argument(
        "--min-chosen-score",
        type=float,
        metavar="X",
        help="the quality bar: an answer whose concise score (0-1) is below X, or that was cut at the length cap, "
        "is never chosen (default: none; 0.5 with --sample-from)",
    )
    build.add_argument("--split", default="train", help="split of a save_to_disk folder or Hub dataset")
    _add_sampling(build)
    build.add_argument(
        "--drop-bad-rows",
        action="store_true",
        help="leave bad input rows out (counted in the report) instead of stopping at the first",
    )
    build.set_defaults(func=_cmd_build)


def _add_sampling(build) -> None:
    """`--sample-from MODEL`: INPUT is a prompts file and the answers are the model's own (on-policy rows)."""
    group = build.add_argument_group(
        "on-policy rows",
        "With --sample-from, INPUT is a prompts file (`prompt`, optional `key_points` and `reference`) and the "
        "answers are sampled from the model (with --adapter), scored and built into rows, as a recipe stage's "
        "`data.generate` does.",
    )
    group.add_argument("--sample-from", metavar="MODEL", help="short name, folder or Hub id of the model to sample")
    group.add_argument("--adapter", metavar="DIR", help="a PEFT adapter folder to sample with (OUTPUT/<stage>/adapter)")
    group.add_argument("--rows", choices=("pairs", "kto", "sft"), default="pairs", help="rows to write (default pairs)")
    group.add_argument("--samples", type=int, default=4, metavar="N", help="answers per prompt (default 4)")
    group.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    group.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    group.add_argument("--max-new-tokens", type=int, default=160, metavar="N", help="answer cap (default 160)")
    group.add_argument(
        "--batch-size", type=int, metavar="N", help="prompts per batch (default: as many as a 2 GiB cache budget holds)"
    )
    group.add_argument(
        "--backend", choices=("align", "vllm"), default="align", help="what samples: align's loop or vLLM (CUDA)"
    )
    group.add_argument(
        "--vllm", action="append", default=[], metavar="NAME=VALUE", help="a vLLM engine argument (repeatable)"
    )
    group.add_argument("--limit", type=int, metavar="N", help="sample only the first N prompts")
    group.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    group.add_argument("--no-reference", action="store_true", help="keep `reference` answers out of the candidates")
    group.add_argument("--greedy", action="store_true", help="add each prompt's greedy answer to its candidates")
    group.add_argument(
        "--loop-pairs", action="store_true", help="pairs: also each looping answer against its loop-free start"
    )


def add_data(sub) -> None:
    """The `align data` command group."""
    data = sub.add_parser(
        "data",
        help="inspect and build preference data",
        description="Data tools: `inspect` "
        "lints data, `build` turns scored or multi-answer data into preference pairs.",
    )
    group = data.add_subparsers(dest="data_command", metavar="COMMAND", parser_class=type(data))
    _add_inspect(group)
    _add_build(group)
    data.set_defaults(func=lambda args: _data_help(data))


def _data_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
