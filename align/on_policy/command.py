"""`align data build PROMPTS -o OUT --sample-from MODEL [--adapter DIR]`: on-policy rows from the command line —
what a stage's `data.generate` does, for a model (and adapter) and a prompts file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from align.errors import AlignError, Problem
from align.on_policy.checks import check_counts, check_loop_pairs
from align.on_policy.vllm_sampling import check_backend, require_vllm
from align.recipe.schema import GenerateConfig

#: `--as`: which rows to write, by the stage kind that trains on them.
ROW_KINDS = {"pairs": "preference", "kto": "kto", "sft": "sft"}


@dataclass(frozen=True)
class SampleRequest:
    """What `--sample-from` was asked: the model (short name, folder or Hub id), an adapter folder or None, the rows
    to make (`pairs`, `kto`, `sft`) and the sampling seed."""

    model: str
    adapter: str | None
    rows: str
    seed: int


class _FlagProblems:
    """Collects `check_counts` problems keyed by setting (a key path's first key); the first one becomes a one-line
    error naming its flag."""

    def __init__(self):
        self.problems: list[tuple[str, str]] = []

    def add(self, path: tuple, message: str) -> None:
        self.problems.append((str(path[0]), message))

    def raise_first(self) -> None:
        if self.problems:
            key, message = self.problems[0]
            raise AlignError(Problem(f"--{key.replace('_', '-')}", message))


def _load_policy(request: SampleRequest):
    from align.models import load_model, load_tokenizer

    if request.adapter and not (Path(request.adapter) / "adapter_config.json").is_file():
        raise AlignError(Problem(request.adapter, "not a PEFT adapter folder (no adapter_config.json)"))
    model = load_model(request.model)
    if request.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, request.adapter)
    return model, load_tokenizer(request.model)


def sample_and_build(settings: GenerateConfig, request: SampleRequest, output: str | Path) -> dict:
    """Sample `settings.samples` answers per prompt from the model (with its adapter), score them and write the
    requested rows to `output` (JSONL) and the report beside it (`.report.json`); returns the report."""
    from align.data.pair_builder import report_path
    from align.on_policy.generated import generate_rows
    from align.on_policy.prompts import load_prompt_rows
    from align.outputs import atomic_write_text
    from align.stages import stage_kind

    problems = _FlagProblems()
    check_counts(settings, (), problems)
    check_loop_pairs(settings, stage_kind(ROW_KINDS[request.rows]), (), problems)
    check_backend(settings, (), problems)
    problems.raise_first()
    output = Path(output)
    if output.suffix.lower() != ".jsonl" or output.is_dir():
        raise AlignError(Problem(str(output), "the rows are JSONL: give an output file ending in .jsonl"))
    prompts = load_prompt_rows(settings.prompts, settings.columns, settings.max_prompts)
    if settings.backend == "vllm":
        require_vllm()
    model, tokenizer = _load_policy(request)
    kind = stage_kind(ROW_KINDS[request.rows])
    rows, report = generate_rows(model, tokenizer, kind, settings, prompts, request.seed)
    report = {**report, "model": request.model, "adapter": request.adapter, "input": settings.prompts}
    atomic_write_text(report_path(output), json.dumps(report, indent=2) + "\n")
    atomic_write_text(output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return {**report, "output": str(output)}


def report_text(report: dict) -> str:
    """A few lines for people: what was sampled, what came of it, where it went."""
    sampling = report["sampling"]
    return "\n".join(
        [
            f"sampled {sampling['answers_sampled']} answers to {report['prompts']} prompts in {report['seconds']} s: "
            f"mean {sampling['mean_answer_tokens']} tokens, loop rate {sampling['loop_rate']}, cut at the cap "
            f"{sampling['cut_rate']}, clearing the bar {sampling['clear_bar_rate']}",
            f"wrote {report['rows']} rows to {report['output']} (report: {Path(report['output']).with_suffix('')}"
            ".report.json)",
        ]
    )
