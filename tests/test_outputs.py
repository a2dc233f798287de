"""The output folder: refused before training when it cannot be written."""

from pathlib import Path

from align.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_unwritable_output_folder_is_refused_before_training(tmp_path, capsys):
    """An output path that cannot be a folder (it lies under a regular file) stops `align train` at once with exit 2
    and one line naming it — before the model is loaded or any step is trained. If this fails, the run would fail
    only when it first saves, possibly hours in."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code = main(["train", str(REPO / "recipes" / "tiny" / "dpo.yaml"), "--output-dir", str(blocker / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "file.txt/out: output folder is not writable" in err and "choose another with --output-dir" in err


def test_trainer_config_is_the_effective_config_with_secrets_masked(tmp_path, monkeypatch):
    """`OUTPUT/<stage>/trainer_config.json` holds the trl config as built (align's defaults over trl's, e.g.
    `logging_nan_inf_filter: false` and `learning_rate` 5e-5, plus the recipe's values), with a literal `hub_token`
    and a secret environment value (here pulled into `hub_model_id`) masked. If this fails, the effective settings
    are lost with the last checkpoint's training_args.bin, or a key is written in clear."""
    import json

    from align.outputs import RunOutputs
    from align.recipe.trl_configs import make_trainer_config

    secret = "hf_SecretValueForTheConfigTest0123"
    monkeypatch.setenv("HF_TOKEN", secret)
    training = {"num_train_epochs": 2, "hub_token": "literal-token-in-recipe", "hub_model_id": f"me/{secret}"}
    config = make_trainer_config("preference", training, output_dir=str(tmp_path / "ck"), seed=7, report_to="none")
    path = RunOutputs(tmp_path).write_trainer_config("concise", config)
    assert path == tmp_path / "concise" / "trainer_config.json"
    text = path.read_text()
    assert secret not in text and "literal-token-in-recipe" not in text
    written = json.loads(text)
    assert written["hub_token"] == "<HUB_TOKEN>" and written["hub_model_id"] == "me/***"
    assert written["num_train_epochs"] == 2 and written["seed"] == 7 and written["learning_rate"] == 5e-5
    assert written["logging_nan_inf_filter"] is False and written["beta"] == config.beta
