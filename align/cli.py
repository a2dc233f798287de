"""`align` command line: parse, call, turn user errors into one line each and exit code 2."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys

from align.errors import AlignError, GateMissed

EXIT_OK, EXIT_FAILURE, EXIT_USER_ERROR = 0, 1, 2
# Errors of the storage, not of align: a full disk or quota, a read-only or forbidden folder.
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (its default prints usage too, which buries the error)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_train(args) -> int:
    from align.curriculum import run_recipe
    from align.recipe import load_recipe
    from align.resume import RunFinished
    from align.runtime import keep_freed_memory

    keep_freed_memory()
    loaded = load_recipe(args.recipe, args.set)
    try:
        summary = run_recipe(loaded, args.output_dir, resume=args.resume, overwrite=args.overwrite)
    except RunFinished as done:  # a requeued job's `--resume` after the run finished: success, nothing to train
        if int(os.environ.get("RANK", "0")) == 0:
            print(done)
        return EXIT_OK
    if int(os.environ.get("RANK", "0")) == 0:
        for stage in summary["stages"]:
            accuracy = stage["eval"].get("rewards/accuracies")
            acc = f", held-out reward accuracy {accuracy:.2f}" if accuracy is not None else ""
            line = f"stage {stage['name']}: {stage['steps']} steps, final loss {stage['final_train_loss']:.4f}{acc}"
            print(line + _phase_times(stage))
        print(f"outputs in {summary['output_dir']}")
    return EXIT_OK


def _phase_times(stage: dict) -> str:
    """`; 91 s training, 40 s sampling, 12 s probes`: where a stage's wall time went (the phases it had)."""
    phases = [
        (stage.get("train_runtime_s"), "training"),
        ((stage.get("generated") or {}).get("seconds"), "sampling"),
        (stage.get("probe_seconds"), "probes"),
    ]
    times = [f"{seconds:.0f} s {name}" for seconds, name in phases if isinstance(seconds, (int, float))]
    return "; " + ", ".join(times) if times else ""


def _cmd_validate(args) -> int:
    from align.recipe import load_recipe
    from align.recipe.explain import explain
    from align.stages import stage_kind

    if args.explain:
        print(explain(args.explain))
        return EXIT_OK
    if not args.recipe:
        raise AlignError("give a RECIPE to validate, or --explain KEY")
    from align.on_policy.vllm_sampling import through_vllm, unchecked_note

    loaded = load_recipe(args.recipe, args.set)
    recipe = loaded.recipe
    stages = ", ".join(
        f"{s.name} ({s.kind}, {stage_kind(s.kind).loss_label(s)}"
        + (f", on-policy: {s.data.generate.samples} samples per prompt" if s.data.generate else "")
        + (" through vLLM" if through_vllm(s) else "")
        + ")"
        for s in recipe.stages
    )
    print(f"{args.recipe}: OK: {len(recipe.stages)} stage(s): {stages}")
    note = unchecked_note(recipe.stages)
    if note:
        print(note)
    return EXIT_OK


def _cmd_plan(args) -> int:
    import json

    from align.plan import format_plan, plan_recipe, plans_as_dicts
    from align.recipe import load_recipe

    plans = plan_recipe(load_recipe(args.recipe, args.set))
    print(json.dumps(plans_as_dicts(plans), indent=2) if args.json else format_plan(plans))
    return EXIT_OK


def _cmd_eval(args) -> int:
    from align.evaluation.compare import run_eval

    run_eval(args)
    return EXIT_OK


def _cmd_report(args) -> int:
    from align.report import write_report
    from align.report_compare import write_comparison

    if len(args.runs) > 2:
        raise AlignError("align report: give one run folder, or two to compare")
    if len(args.runs) == 1 and args.compare_dir:
        raise AlignError("align report: --output-dir is for comparing two runs; one run's report goes to its report/")
    written = write_report(args.runs[0]) if len(args.runs) == 1 else write_comparison(*args.runs, args.compare_dir)
    for path in written:
        print(path)
    return EXIT_OK


SET_HELP = (
    "override a recipe value, e.g. --set stages.concise.loss.beta=0.05 (repeatable; stages by name or index; "
    "VALUE is parsed as YAML)"
)


def _recipe_arguments(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """RECIPE and --set, shared by every command that reads a recipe."""
    parser.add_argument("recipe", metavar="RECIPE", nargs="?" if optional else None, help="path to a YAML recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def _add_train(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train every stage of a recipe",
        description="Train every stage of RECIPE in order, carrying the adapter forward. Writes "
        "OUTPUT/<stage>/adapter/, metrics.jsonl, summary.json and recipe.resolved.yaml.",
    )
    _recipe_arguments(train)
    train.add_argument("--output-dir", metavar="DIR", help="where outputs go (default: the recipe's output_dir)")
    again = train.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in the output folder: "
        "skip its finished stages, restart the unfinished one from its latest checkpoint; safe to "
        "repeat: starts a run if there is none yet, does nothing if it finished",
    )
    again.add_argument("--overwrite", action="store_true", help="replace a previous run in the output folder")
    train.set_defaults(func=_cmd_train)


def _add_validate(sub) -> None:
    validate = sub.add_parser(
        "validate",
        help="check a recipe without training",
        description="Check RECIPE: report every problem at once as FILE:LINE: KEY: message. Exit 0 if valid, 2 if not.",
    )
    _recipe_arguments(validate, optional=True)
    validate.add_argument(
        "--explain",
        metavar="KEY",
        help="print the documentation of a recipe key (stages.loss, training.learning_rate, peft.r, loss...) and exit",
    )
    validate.set_defaults(func=_cmd_validate)


def _add_plan(sub) -> None:
    plan = sub.add_parser(
        "plan",
        help="show what each stage will do, without training",
        description="Read the recipe, its data and the tokenizer (no model weights) and print, per stage: kind, "
        "training and held-out rows after filters, optimizer steps, loss, reference, and estimated training tokens.",
    )
    _recipe_arguments(plan)
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plan.set_defaults(func=_cmd_plan)


def _add_eval(sub) -> None:
    ev = sub.add_parser(
        "eval",
        help="generate answers and score them, optionally against the base model",
        description="Greedy answers to held-out prompts with the model's chat template; prints mean "
        "response tokens and, with --baseline, a side-by-side comparison with the base model.",
    )
    ev.add_argument("--model", required=True, help="short name, folder or Hub id of the base model")
    ev.add_argument("--adapter", metavar="DIR", help="a PEFT adapter folder (e.g. OUTPUT/<stage>/adapter)")
    ev.add_argument("--baseline", action="store_true", help="also answer with the base model and compare")
    ev.add_argument(
        "--prompts",
        required=True,
        metavar="FILE",
        help='JSONL rows with "prompt" (and optional "key_points", "reference")',
    )
    ev.add_argument(
        "--pairs",
        metavar="FILE",
        help='JSONL preference rows {"prompt", "chosen", "rejected", "kind"?}: report pair_accuracy (the adapter\'s '
        "implicit reward against the base model) overall and by kind",
    )
    ev.add_argument(
        "--reference-free",
        action="store_true",
        help="pair accuracy from length-normalised log-probs of the model alone (for simpo/cpo/orpo runs)",
    )
    ev.add_argument("--output", metavar="OUT.json", help="write the figures and every answer here")
    ev.add_argument("--max-new-tokens", type=int, default=192, metavar="N", help="answer length cap (default 192)")
    ev.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="prompts per generation batch (default: as many as fit 2 GiB of cache and activations) and pairs per "
        "--pairs batch (default 8)",
    )
    ev.add_argument("--limit", type=int, metavar="N", help="answer only the first N prompts (default: all)")
    ev.add_argument("--show", type=int, default=3, metavar="N", help="print N answers side by side (default 3)")
    ev.set_defaults(func=_cmd_eval)


def _add_report(sub) -> None:
    report = sub.add_parser(
        "report",
        help="plot a run's metrics and write report.md, or compare two runs (no tracker needed)",
        description="Read OUTPUT_DIR/metrics.jsonl and summary.json (and each stage's probes.jsonl) and write PNG "
        "plots of loss, reward margin and accuracy, pair lengths, before/after answer lengths and probe figures, "
        "with stage boundaries marked, plus a report.md that links them, into OUTPUT_DIR/report/. Given two run "
        "folders A B: one plot per loss and reward metric with both runs' curves, and compare.md with their setups "
        "and stage figures side by side, into A/report/compare-<B folder name>/ (or --output-dir).",
    )
    report.add_argument(
        "runs", nargs="+", metavar="OUTPUT_DIR", help="the output folder of an `align train` run (two to compare)"
    )
    report.add_argument("--output-dir", dest="compare_dir", metavar="DIR", help="where a comparison of two runs goes")
    report.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="align",
        description="Contrastive alignment fine-tuning for concise, actionable answers. "
        "Recipes are YAML; training runs trl trainers with PEFT adapters under accelerate.",
        epilog="Exit codes: 0 success, 1 internal failure (or, for `data inspect`, problems found), 2 bad recipe, "
        "data or flags.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (default: warnings only)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from align.cli_chat import add_chat
    from align.cli_data import add_data
    from align.cli_export import add_export

    for add in (_add_train, _add_validate, _add_plan, _add_eval, _add_report, add_data, add_export, add_chat):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from align.progress import quiet_library_bars
    from align.redaction import install_log_redaction

    quiet_library_bars()
    install_log_redaction()
    try:
        return args.func(args)
    except AlignError as exc:
        from align.redaction import redact_text

        for problem in exc.problems:
            print(redact_text(f"error: {problem}"), file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            raise
        where = exc.filename or "output"
        print(
            f"error: {where}: cannot write: {exc.strerror}; free some space or choose another --output-dir "
            "(a stopped run continues with --resume)",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except GateMissed as missed:
        for line in missed.lines:
            print(f"gate: {line}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
