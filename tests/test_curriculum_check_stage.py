"""`align.curriculum.check_stage`: a stage's probe prompts answered, their figures and answers written, and its gates
checked against those and the held-out figures — with fake generation, so every figure is worked by hand."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from align.curriculum import check_stage
from align.evaluation import probes
from align.evaluation.probes import BaseAnswers
from align.gates import GateMissed
from align.outputs import RunOutputs
from align.recipe.loading import LoadedRecipe
from align.recipe.schema import GatesConfig, StageEvalConfig
from align.run_context import RunContext
from align.tracking import Tracker
from tests.evaluation.probe_fakes import BASE, PROMPTS, FakeModel, fake_generate

# Two probe prompts (max_prompts = 2 of 3), see tests/evaluation/probe_fakes.py: tuned tokens 4 and 3, base 12 and 8
# → ratio 3.5 / 10 = 0.35; key-point recall tuned 0.75, base 1.0 → drop 0.25.
RATIO, DROP = 0.35, 0.25


class RecordingTracker(Tracker):
    def __init__(self):
        super().__init__()
        self.rows, self.generations = [], []

    def log(self, row):
        self.rows.append(row)

    def log_generations(self, stage, step, records):
        self.generations.append((stage, step, records))


@pytest.fixture
def stage_check(tmp_path, monkeypatch):
    """`stage_check(gates, prompts="probes.jsonl", eval_figures=..., name="easy", tuned=...)` runs check_stage on a
    fake model (probe answers from probe_fakes, `tuned` replacing some of the adapter's) in a recipe folder holding
    `probes.jsonl`; returns (result, model, tracker)."""
    monkeypatch.setattr(probes, "generate_answers", fake_generate)
    (tmp_path / "probes.jsonl").write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    loaded = LoadedRecipe(recipe=None, raw={}, source=str(tmp_path / "recipe.yaml"), base_dir=tmp_path)
    outputs, model, base_answers = RunOutputs(tmp_path / "out"), FakeModel(), BaseAnswers()
    context = dict(tokenizer=None, peft={}, seed=0, run_name="t", outputs=outputs, base_answers=base_answers)

    def run(
        gates: GatesConfig, prompts: str | None = "probes.jsonl", eval_figures=None, name="easy", step=12, tuned=None
    ):
        model.tuned = tuned or {}
        ev = StageEvalConfig(prompts=prompts, max_prompts=2, max_new_tokens=7, batch_size=4, gates=gates)
        tracker = RecordingTracker()
        run_context = RunContext(**context, tracker=tracker)
        result = check_stage(loaded, run_context, SimpleNamespace(name=name, eval=ev), model, step, eval_figures or {})
        return result, model, tracker

    return run


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_probes_written_and_gates_met(stage_check, tmp_path):
    """Floor 0.6 met by accuracy 0.75, length ceiling 0.5 met by 0.35, recall-drop ceiling 0.3 met by 0.25. The
    probe row goes to metrics.jsonl and the tracker at the run-wide step, the answers to OUTPUT/easy/probes.jsonl.
    If this fails, a stage's probe figures or answers are lost, or gates check numbers nobody can see."""
    gates = GatesConfig(min_pair_accuracy=0.6, max_mean_tokens_ratio=0.5, max_key_point_recall_drop=0.3)
    result, model, tracker = stage_check(gates, eval_figures={"rewards/accuracies": 0.75})
    probe = result["probe"]
    assert probe["probe/mean_tokens_ratio"] == pytest.approx(RATIO)
    assert probe["probe/key_point_recall_drop"] == DROP
    assert result["gates"] == [
        {"gate": "min_pair_accuracy", "limit": 0.6, "value": 0.75, "passed": True},
        {"gate": "max_mean_tokens_ratio", "limit": 0.5, "value": pytest.approx(RATIO), "passed": True},
        {"gate": "max_key_point_recall_drop", "limit": 0.3, "value": DROP, "passed": True},
    ]
    assert [(c["adapter_on"], len(c["prompts"]), c["max_new_tokens"], c["batch_size"]) for c in model.calls] == [
        (True, 2, 7, 4),
        (False, 2, 7, 4),
    ]
    assert _lines(tmp_path / "out" / "metrics.jsonl") == [{"stage": "easy", "step": 12, **probe}]
    written = _lines(tmp_path / "out" / "easy" / "probes.jsonl")
    assert [(r["prompt"], r["tuned"], r["base"]) for r in written] == [
        (PROMPTS[0]["prompt"], "Run ls -a.", BASE[PROMPTS[0]["prompt"]][0]),
        (PROMPTS[1]["prompt"], "Nine minutes.", "Boil it for nine minutes."),
    ]
    assert tracker.rows == [{"stage": "easy", "step": 12, **probe}]
    assert tracker.generations == [("easy", 12, written)]


def test_a_missed_floor_stops_after_writing_the_probes(stage_check, tmp_path):
    """Accuracy 0.75 under a 0.8 floor: GateMissed by 0.05, naming the stage; the met length gate is not reported;
    the probe figures and answers are written before it stops, and the exception carries what was checked for
    summary.json. If this fails, a stage below its accuracy floor lets the next stage start, or its evidence is
    lost."""
    gates = GatesConfig(min_pair_accuracy=0.8, max_mean_tokens_ratio=0.5)
    with pytest.raises(GateMissed) as missed:
        stage_check(gates, eval_figures={"rewards/accuracies": 0.75}, name="hard")
    assert missed.value.lines == [
        "stage 'hard' missed gate min_pair_accuracy: held-out reward accuracy is 0.75, below the floor 0.8 by 0.05"
    ]
    checked = missed.value.checked
    assert [(g["gate"], g["passed"]) for g in checked["gates"]] == [
        ("min_pair_accuracy", False),
        ("max_mean_tokens_ratio", True),
    ]
    assert checked["probe"]["probe/mean_tokens_ratio"] == pytest.approx(RATIO)
    assert len(_lines(tmp_path / "out" / "metrics.jsonl")) == 1
    assert len(_lines(tmp_path / "out" / "hard" / "probes.jsonl")) == 2


def test_a_missed_length_ceiling_says_by_how_much(stage_check):
    """Ratio 0.35 over a 0.3 ceiling: missed by 0.05. If this fails, the probe figure does not reach its gate."""
    with pytest.raises(GateMissed) as missed:
        stage_check(GatesConfig(max_mean_tokens_ratio=0.3))
    assert missed.value.lines == [
        "stage 'easy' missed gate max_mean_tokens_ratio: probe answer length ÷ base model's is 0.35, above the limit "
        "0.3 by 0.05"
    ]


def test_a_looping_adapter_misses_the_loop_gates_by_how_much(stage_check, tmp_path):
    """The adapter answers the second probe "No, no, no, no, no, no": 1 of 2 answers loops → loop rate 0.5; the base
    model's answers do not loop → increase 0.5. Ceilings 0.25 and 0.2 are missed by 0.25 and 0.3; the probes are
    written first, with the looping answer marked. If this fails, a stage whose adapter degenerates into loops lets
    the next stage start."""
    looping = {PROMPTS[1]["prompt"]: ("No, no, no, no, no, no", 6)}
    with pytest.raises(GateMissed) as missed:
        stage_check(GatesConfig(max_loop_rate=0.25, max_loop_rate_increase=0.2), tuned=looping)
    assert missed.value.lines == [
        "stage 'easy' missed gate max_loop_rate: share of probe answers that loop is 0.5, above the limit 0.25 by 0.25",
        "stage 'easy' missed gate max_loop_rate_increase: probe loop rate increase vs base is 0.5, above the limit "
        "0.2 by 0.3",
    ]
    probe = missed.value.checked["probe"]
    assert (probe["probe/loop_rate"], probe["probe/base_loop_rate"], probe["probe/loop_rate_increase"]) == (
        0.5,
        0.0,
        0.5,
    )
    written = _lines(tmp_path / "out" / "easy" / "probes.jsonl")
    assert [(r["tuned_loops"], r["base_loops"]) for r in written] == [(False, False), (True, False)]


def test_without_prompts_nothing_is_generated_and_probe_gates_miss(stage_check, tmp_path):
    """No `eval.prompts`: no generation, no probe row, no probes.jsonl; a held-out floor still passes on the eval
    figures, while a probe gate cannot be measured and misses. If this fails, a probe gate passes with no probes,
    or a stage without prompts generates anyway."""
    result, model, _ = stage_check(
        GatesConfig(min_pair_accuracy=0.5), prompts=None, eval_figures={"rewards/accuracies": 0.5}
    )
    assert result == {"probe": {}, "gates": [{"gate": "min_pair_accuracy", "limit": 0.5, "value": 0.5, "passed": True}]}
    assert model.calls == [] and not (tmp_path / "out" / "metrics.jsonl").exists()
    with pytest.raises(GateMissed) as missed:
        stage_check(GatesConfig(max_mean_tokens_ratio=0.8), prompts=None)
    assert missed.value.lines == [
        "stage 'easy' missed gate max_mean_tokens_ratio: probe answer length ÷ base model's was not measured "
        "(probe/mean_tokens_ratio missing)"
    ]


def test_later_stages_reuse_the_base_answers(stage_check, tmp_path):
    """Two stages with the same prompts: the base model answers once (3 generation calls, not 4), and each stage's
    row carries its own step. If this fails, every stage pays for the base model's answers again."""
    stage_check(GatesConfig(), name="first", step=5)
    _, model, _ = stage_check(GatesConfig(), name="second", step=9)
    assert [c["adapter_on"] for c in model.calls] == [True, False, True]
    assert [(r["stage"], r["step"]) for r in _lines(tmp_path / "out" / "metrics.jsonl")] == [
        ("first", 5),
        ("second", 9),
    ]
