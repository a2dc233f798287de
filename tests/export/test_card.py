"""Model cards from a run's summary: Hub metadata, how to load, the stage's place, data, losses, settings, held-out
and probe figures beside the base model's, gates and misses."""

from huggingface_hub import ModelCard

from align.export.card import ADAPTER, MERGED, is_hub_id, render_card
from align.export.facts import stage_facts

RAW = {
    "name": "demo",
    "model": {"name": "smollm2-135m-instruct"},
    "peft": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear", "lora_dropout": 0.0},
    "seed": 42,
    "training": {"learning_rate": 1.0e-4, "num_train_epochs": 1, "logging_steps": 4},
    "stages": [
        {"name": "warmup", "kind": "sft", "data": {"train": [{"path": "/home/alice/data/concise/sft.jsonl"}]}},
        {
            "name": "easy",
            "data": {
                "train": [{"path": "/home/alice/data/concise/train.jsonl"}, {"path": "org/pairs"}],
                "eval": [{"path": "/home/alice/data/concise/heldout_pairs.jsonl"}],
            },
            "training": {"learning_rate": 5.0e-5, "per_device_train_batch_size": 4},
        },
        {"name": "hard"},
    ],
}
EASY = {
    "name": "easy",
    "kind": "preference",
    "steps": 48,
    "train_rows": 192,
    "eval_rows": 32,
    "loss": [{"name": "dpo", "weight": 1.0, "beta": 0.1}, {"name": "sft", "weight": 0.5}],
    "final_train_loss": 0.6123,
    "mean_train_loss": 0.7311,
    "eval": {"rewards/accuracies": 0.8125, "rewards/margins": 0.4321},
    "rows": {"train_rows_read": 1584, "filtered_by_kind": 936},
    "probe": {
        "probe/mean_response_tokens": 61.5,
        "probe/base_mean_response_tokens": 142.25,
        "probe/key_point_recall": 0.7,
        "probe/base_key_point_recall": 0.75,
        "probe/mean_tokens_ratio": 0.4323,
    },
    "gates": [{"gate": "max_mean_tokens_ratio", "limit": 0.8, "value": 0.4323, "passed": True}],
}
SUMMARY = {"recipe": "demo", "model": "smollm2-135m-instruct", "stages": [{"name": "warmup", "kind": "sft"}, EASY]}


def _card(artifact=ADAPTER, base="HuggingFaceTB/SmolLM2-135M-Instruct", summary=SUMMARY):
    return render_card(stage_facts(summary, RAW, "easy"), artifact, base, "me/demo-easy")


def test_adapter_card_reports_the_stage_from_the_summary():
    """Every figure the summary holds for the stage appears in the card: place in the recipe, losses and their
    parameters, rows, settings (stage over recipe), held-out figures, probe figures beside the base model's, gates.
    If this fails, the card is peft's empty template again or shows numbers that are not the run's."""
    text = _card()
    assert "stage 2 of 3: warmup → **easy** → hard" in text
    assert "dpo (beta 0.1) + 0.5 × sft" in text and "48 optimizer steps; seed 42" in text
    assert "final 0.6123, mean 0.7311" in text
    assert "| training.learning_rate | 5e-05 |" in text and "| training.per_device_train_batch_size | 4 |" in text
    assert "| peft.r | 16 |" in text and "logging_steps" not in text
    assert "| trained on | 192 |" in text and "| held out | 32 |" in text and "| train rows read | 1584 |" in text
    assert "| rewards/accuracies | 0.8125 |" in text
    assert "| mean_response_tokens | 61.5 | 142.2 |" in text and "| key_point_recall | 0.7 | 0.75 |" in text
    assert "| mean_tokens_ratio | 0.4323 |" in text
    assert "| max_mean_tokens_ratio | 0.8 | 0.4323 | passed |" in text


def test_data_sources_do_not_publish_the_training_machines_folders():
    """Local files are named by their last two path parts, Hub datasets by id. If this fails, a pushed card leaks
    the trainer's home folder."""
    text = _card()
    assert "`concise/train.jsonl`, `org/pairs`" in text and "`concise/heldout_pairs.jsonl`" in text
    assert "/home/alice" not in text


def test_metadata_header_and_load_example():
    """The header is Hub model-card metadata (base_model, library_name, tags) and the example loads from the repo
    or folder the card ships in; SmolLM2's card says align trained on its own dequantised copy. If this fails, the
    Hub does not link the base model or the example points at the training machine."""
    card = ModelCard(_card())
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.library_name == "peft"
    assert {"align", "lora", "preference"} <= set(card.data.tags)
    assert 'AutoPeftModelForCausalLM.from_pretrained("me/demo-easy")' in card.text
    assert "GGUF Q4_1, dequantised" in card.text
    merged = ModelCard(_card(MERGED))
    assert merged.data.library_name == "transformers" and "from peft" not in merged.text
    assert 'AutoModelForCausalLM.from_pretrained("me/demo-easy")' in merged.text


def test_a_local_base_is_not_claimed_as_a_hub_model(tmp_path):
    """A base model named by a folder gets no `base_model` metadata and a line saying how to point the adapter at
    it elsewhere. If this fails, the Hub rejects the card or links a model that does not exist."""
    card = ModelCard(_card(base=str(tmp_path)))
    assert card.data.base_model is None and "set `base_model_name_or_path`" in card.text
    assert is_hub_id("org/name") and not is_hub_id(str(tmp_path)) and not is_hub_id("./x")


def test_missed_gates_are_on_the_card():
    """A stage that missed a gate says so, with the gate line. If this fails, an adapter the run rejected looks
    as good as one that passed."""
    missed = {
        **EASY,
        "gates": [{"gate": "max_mean_tokens_ratio", "limit": 0.3, "value": 0.4323, "passed": False}],
        "gates_missed": ["stage 'easy' missed gate max_mean_tokens_ratio: ... above the limit 0.3 by 0.1323"],
    }
    text = _card(summary={**SUMMARY, "stages": [SUMMARY["stages"][0], missed]})
    assert "| max_mean_tokens_ratio | 0.3 | 0.4323 | MISSED |" in text
    assert "missed its gates" in text and "above the limit 0.3 by 0.1323" in text
