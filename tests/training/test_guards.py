"""A NaN or infinite loss stops the run at once, naming the stage and the global step."""

import math

import pytest
from transformers import TrainerControl, TrainerState

from align.errors import AlignError
from align.training.guards import NonFiniteLossGuard
from tests.loss_fixtures import register_test_loss_fixture  # noqa: F401  (the `register_test_loss` fixture)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_names_stage_and_global_step(bad):
    """Stage started after 10 steps of earlier stages; its step 3 is global step 13."""
    guard = NonFiniteLossGuard("hard", step_offset=10)
    state = TrainerState()
    state.global_step = 3
    with pytest.raises(AlignError, match=r"stage 'hard', step 13: the training loss is"):
        guard.on_log(None, state, TrainerControl(), logs={"loss": bad})


def test_finite_and_eval_logs_pass():
    guard = NonFiniteLossGuard("easy", step_offset=0)
    state = TrainerState()
    guard.on_log(None, state, TrainerControl(), logs={"loss": 0.5})
    guard.on_log(None, state, TrainerControl(), logs={"eval_loss": math.nan, "train_runtime": 1.0})


@pytest.mark.slow
def test_a_real_run_stops_at_the_first_nan_step(tiny_model_dir, tmp_path, register_test_loss):
    """A loss that turns NaN stops training at once with the stage and step; the step's row is still logged; the
    checkpoint of the last good step stays (and is what --resume would use), no checkpoint of the NaN step is made."""
    import json
    from pathlib import Path

    from align.curriculum import run_recipe
    from align.losses import LossOutput
    from align.recipe import load_recipe
    from align.resume import latest_checkpoint

    @register_test_loss("test_nan_after_one", needs_reference=False)
    def nan_loss(inputs):
        """Test loss: 0·π_c (finite) on the first call, NaN after."""
        nan_loss.calls = getattr(nan_loss, "calls", 0) + 1
        scale = 0.0 if nan_loss.calls == 1 else float("nan")
        zeros = inputs.policy_chosen_logps.detach() * 0
        return LossOutput(inputs.policy_chosen_logps * scale, zeros, zeros)

    repo = Path(__file__).resolve().parents[2]
    overrides = [
        f"model.name={tiny_model_dir}",
        "stages.concise.loss={name: test_nan_after_one}",
        "stages.concise.training.save_strategy=steps",
        "stages.concise.training.save_steps=1",
    ]
    loaded = load_recipe(repo / "recipes" / "tiny" / "dpo.yaml", overrides)
    with pytest.raises(AlignError, match=r"stage 'concise', step 2: the training loss is nan"):
        run_recipe(loaded, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["loss"] == "nan"
    checkpoints = tmp_path / "out" / "concise" / "checkpoints"
    assert latest_checkpoint(checkpoints) == checkpoints / "checkpoint-1"
    assert not (checkpoints / "checkpoint-2").exists()
