"""Unit tests of one stage's bookkeeping (align/training/stages.py): what it reports, with hand-worked values."""

from types import SimpleNamespace

import pytest

from align.data.rows import PreferenceRow
from align.training import stages


def test_last_train_loss_skips_eval_and_summary_entries():
    """The final training loss is the last entry with `loss` that is not an eval entry: here 0.4 (step 3), not the
    eval row after it nor trainer's closing summary without `loss`. If this fails, summary.json reports an eval
    loss, or an earlier step's, as the stage's final training loss."""
    history = [
        {"loss": 0.7, "step": 1},
        {"loss": 0.4, "step": 3},
        {"eval_loss": 0.5, "loss": 0.9},
        {"train_runtime": 2},
    ]
    assert stages._last_train_loss(history) == 0.4
    assert stages._last_train_loss([{"train_runtime": 2}]) is None


def test_eval_figures_drop_prefix_runtime_noise_and_non_finite_values():
    """`eval_rewards/accuracies` → `rewards/accuracies`; runtime, throughput and epoch are noise, NaN is not a
    figure (it would break the gates and JSON readers). If this fails, gates look up the wrong keys."""
    metrics = {
        "eval_rewards/accuracies": 0.75,
        "eval_loss": 0.61,
        "eval_runtime": 3.2,
        "eval_samples_per_second": 10.0,
        "eval_steps_per_second": 2.0,
        "epoch": 1.0,
        "eval_logps/chosen": float("nan"),
        "eval_note": "text",
    }
    assert stages._eval_figures(metrics) == {"rewards/accuracies": 0.75, "loss": 0.61}


def test_rows_become_conversational_only_with_a_chat_template():
    """With a chat template, rows are message lists (trl applies the template, as inference will); without one,
    plain strings. If this fails, a chat model trains on text it never sees at inference, or a base model crashes."""
    rows = [PreferenceRow(prompt="Q?", chosen="A.", rejected="Long A.")]
    chat = stages.rows_to_dataset(rows, SimpleNamespace(chat_template="{{ x }}"))
    assert chat[0]["prompt"] == [{"role": "user", "content": "Q?"}]
    assert chat[0]["chosen"] == [{"role": "assistant", "content": "A."}]
    plain = stages.rows_to_dataset(rows, SimpleNamespace(chat_template=None))
    assert plain[0] == {"prompt": "Q?", "chosen": "A.", "rejected": "Long A."}


@pytest.mark.parametrize(("loss", "expected"), [("sft", [{"name": "sft (trl)", "weight": 1.0}]), ("dpo", None)])
def test_stage_summary_records_the_losses_that_trained(loss, expected, tmp_path):
    """An sft stage reports trl's SFT loss; a preference stage each term with its weight and parameters; steps are
    numbered globally (offset 5 + 3 steps → 6..8). If this fails, summary.json misreports what trained."""
    from align.outputs import RunOutputs

    term = SimpleNamespace(name="dpo", weight=0.5, params={"beta": 0.2})
    stage = SimpleNamespace(name="s", kind="sft" if loss == "sft" else "preference", loss=[term])
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=3, log_history=[{"loss": 0.3}]))
    output = SimpleNamespace(training_loss=0.35, metrics={"train_runtime": 1.5})
    summary = stages._stage_summary(stage, trainer, output, {"eval_loss": 0.2}, 12, 4, 5, RunOutputs(tmp_path))
    assert summary["loss"] == (expected or [{"name": "dpo", "weight": 0.5, "beta": 0.2}])
    assert (summary["first_step"], summary["last_step"], summary["steps"]) == (6, 8, 3)
    assert (summary["final_train_loss"], summary["mean_train_loss"], summary["eval"]) == (0.3, 0.35, {"loss": 0.2})
    assert (summary["train_rows"], summary["eval_rows"], summary["train_runtime_s"]) == (12, 4, 1.5)
