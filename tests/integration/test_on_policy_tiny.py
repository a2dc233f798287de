"""On-policy stages on the tiny model (recipes/tiny/on_policy.yaml): answers sampled from the carried adapter,
scored, paired and trained, in two rounds; a resumed run reuses the rows; two processes sample disjoint shares."""

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.integration.launch import launch, train_args, two_cpu_processes

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "tiny" / "on_policy.yaml"
pytestmark = pytest.mark.slow


def _lora_b_total(tensors) -> float:
    """Σ|B| over the LoRA B matrices: 0 for a fresh adapter, a fingerprint of a trained one."""
    return float(sum(t.detach().abs().sum() for name, t in tensors if "lora_B" in name))


def _saved_fingerprint(out: Path, stage: str) -> float:
    return _lora_b_total(load_file(str(out / stage / "adapter" / "adapter_model.safetensors")).items())


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    """The recipe trained in this process, recording the policy each sampling call saw."""
    import align.on_policy.generated as generated
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    seen, real = [], generated.generate_rows

    def recording(model, *args, **kwargs):
        seen.append(_lora_b_total(model.named_parameters()))
        return real(model, *args, **kwargs)

    out = tmp_path_factory.mktemp("run") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generated, "generate_rows", recording)
        summary = run_recipe(load_recipe(RECIPE, [f"model.name={tiny_model_dir}"]), out)
    return out, summary, seen


def test_rows_are_sampled_scored_paired_and_trained(run):
    """Both rounds wrote generated.jsonl and its report; the stage trained on exactly those rows (8 prompts, at
    most 2 pairs each, a pair's chosen answer scoring above its rejected one), logged a loss at every step, and
    saved its adapter. If this fails, on-policy rows are not made, not used, or not the pair builder's."""
    out, summary, _ = run
    assert [s["name"] for s in summary["stages"]] == ["warmup", "self-round1", "self"]
    for stage in summary["stages"][1:]:
        report = stage["generated"]
        rows = [json.loads(line) for line in (out / stage["name"] / "generated.jsonl").read_text().splitlines()]
        assert report["rows"] == len(rows) == stage["rows"]["train_rows_read"] == stage["train_rows"] > 0
        assert report["prompts"] == 8 and report["sampling"]["answers_sampled"] == 24 and not report["reused"]
        assert len(rows) <= 16 and all(r["chosen_score"] > r["rejected_score"] for r in rows)
        assert all(r["chosen"] != r["rejected"] for r in rows)
        assert report["built"]["rows_written"] == len(rows)
        assert stage["steps"] > 0 and isinstance(stage["final_train_loss"], float)
        assert (out / stage["name"] / "adapter" / "adapter_model.safetensors").exists()
    assert summary["stages"][1]["generated"]["seed"] != summary["stages"][2]["generated"]["seed"]


def test_each_round_samples_the_adapter_the_round_before_trained(run):
    """Round 1 sampled the warm-up's adapter, round 2 the adapter round 1 trained (Σ|LoRA B| of the sampling model
    equals that of the saved adapter). If this fails, rounds sample a stale policy: not on-policy at all."""
    out, _, seen = run
    expected = [_saved_fingerprint(out, "warmup"), _saved_fingerprint(out, "self-round1")]
    assert expected[0] > 0 and expected[0] != expected[1]
    assert seen == pytest.approx(expected, rel=1e-5)


def test_resume_reuses_generated_rows(run, tiny_model_dir, tmp_path, monkeypatch):
    """A run stopped after `self` generated its rows (its summary lists warmup and self-round1 as done, `self`
    has generated.jsonl but no adapter) resumes without sampling: the same rows file, `reused: true`, and `self`
    trained on it. If this fails, a resumed run samples again and trains on different rows."""
    import align.on_policy.generated as generated
    from align.curriculum import run_recipe
    from align.recipe import load_recipe

    source, summary, _ = run
    out = tmp_path / "out"
    shutil.copytree(source, out)
    stopped = {**summary, "status": "running", "stages": summary["stages"][:2]}
    (out / "summary.json").write_text(json.dumps(stopped))
    shutil.rmtree(out / "self" / "adapter")
    before = (out / "self" / "generated.jsonl").read_bytes()

    def must_not_sample(*args, **kwargs):
        raise AssertionError("a resumed run sampled again")

    monkeypatch.setattr(generated, "generate_rows", must_not_sample)
    resumed = run_recipe(load_recipe(RECIPE, [f"model.name={tiny_model_dir}"]), out, resume=True)
    last = resumed["stages"][-1]
    assert last["name"] == "self" and last["generated"]["reused"] is True
    assert (out / "self" / "generated.jsonl").read_bytes() == before
    assert last["train_rows"] == summary["stages"][-1]["train_rows"]


def test_two_processes_sample_disjoint_shares_and_write_once(tiny_model_dir, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` (gloo, CPU), one round: rank 0 sampled prompts 0, 2, 4,
    6 and rank 1 prompts 1, 3, 5, 7 — disjoint, all 8 together; one generated.jsonl with no repeated row; both ranks
    trained on those rows. If this fails, processes sample the same prompts (duplicates) or race on the file."""
    out = tmp_path / "out"
    args = train_args(RECIPE, tiny_model_dir, out, "stages.self.data.generate.rounds=1")
    result = launch(two_cpu_processes(29541), args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    stage = summary["stages"][-1]
    assert summary["world_size"] == 2 and stage["name"] == "self"
    shares = [p["prompts"] for p in stage["generated"]["processes"]]
    assert shares == [[0, 2, 4, 6], [1, 3, 5, 7]]
    lines = (out / "self" / "generated.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)) == stage["generated"]["rows"] == stage["rows"]["train_rows_read"]
    assert stage["data_parallel"]["rows_on_several_ranks"] == 0 or len(lines) % 8


def test_a_reward_model_joins_the_ranking(tiny_model_dir, tmp_path):
    """`scorers: {concise: 1, reward_model: 0.5}` with a tiny sequence-classification model: one round samples,
    the rows are ranked by the mix (each row's chosen score above its rejected one, in z-score units), the report
    names both scorers, and the stage trains. If this fails, a recipe's reward model is refused, ignored or breaks
    sampling."""
    from align.curriculum import run_recipe
    from align.recipe import load_recipe
    from tests.scorers.conftest import build_reward_model

    reward = build_reward_model(tmp_path / "reward")
    overrides = [
        f"model.name={tiny_model_dir}",
        "stages.self.data.generate.rounds=1",
        "stages.self.data.generate.max_prompts=4",
        "stages.self.data.generate.scorers={concise: 1.0, reward_model: 0.5}",
        f"stages.self.data.generate.reward_model={reward}",
    ]
    summary = run_recipe(load_recipe(RECIPE, overrides), tmp_path / "out")
    stage = summary["stages"][-1]
    assert stage["generated"]["scorers"] == {"concise": 1.0, "reward_model": 0.5}
    assert stage["generated"]["built"]["ranked_by"] == "data"
    rows = [json.loads(line) for line in (tmp_path / "out" / "self" / "generated.jsonl").read_text().splitlines()]
    assert rows and all(r["chosen_score"] > r["rejected_score"] for r in rows)
    assert any(r["rejected_score"] < 0 for r in rows), "z-score units: concise scores are never negative"
    assert stage["steps"] > 0
