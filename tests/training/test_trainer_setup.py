"""How `ContrastiveTrainer` sets itself up around trl: the caller's config untouched, every model prepared once."""

import copy

from datasets import Dataset

from align.data import load_preference_rows
from align.losses import LossTerm
from align.models import load_model, load_tokenizer
from align.recipe.trl_configs import make_trainer_config
from align.training.logprobs import add_completion_logps
from align.training.private_api import attention_implementation
from align.training.segment_attention import use_segment_attention
from tests.conftest import REPO

SMALL = {"per_device_train_batch_size": 2, "max_length": 128}


def _config(tmp_path, training: dict):
    return make_trainer_config("preference", training, output_dir=str(tmp_path / "trainer"), seed=0, report_to="none")


def _full_fine_tuning(tiny_model_dir, config, loss: str, **kwargs):
    """A trainer without PEFT on 4 shipped pairs (the reference is a separate model)."""
    from align.training.trainer import ContrastiveTrainer

    rows = load_preference_rows(REPO / "data" / "concise" / "train.jsonl")[:4]
    return ContrastiveTrainer(
        model=load_model(str(tiny_model_dir), dtype="float32"),
        args=config,
        train_dataset=Dataset.from_list([row.to_conversational() for row in rows]),
        processing_class=load_tokenizer(str(tiny_model_dir)),
        loss_terms=[LossTerm(loss)],
        **kwargs,
    )


def test_the_callers_config_is_not_changed(tiny_model_dir, tmp_path):
    """A reference-free loss turns trl's reference precompute off — in the trainer's own copy: the config the caller
    passed keeps `precompute_ref_log_probs: true` and every other value. If this fails, a caller reusing its config
    for the next stage (or reporting it) sees values it never set."""
    config = _config(tmp_path, {**SMALL, "precompute_ref_log_probs": True})
    before = copy.deepcopy(config.to_dict())
    trainer = _full_fine_tuning(tiny_model_dir, config, "simpo")
    assert trainer.args is not config and trainer.args.precompute_ref_log_probs is False
    assert config.precompute_ref_log_probs is True
    assert config.to_dict() == before


def test_every_model_is_prepared_once_at_construction(tiny_model_dir, tmp_path, monkeypatch):
    """Full fine-tuning with a reference model the caller passes: after construction the policy and the reference
    (the very object passed, as accelerate's wrapper holds it) have align's log-prob path and segment attention, and
    a reference forward prepares nothing more. If this fails, the reference's first forward runs trl's path (or the
    model's own attention over a packed row), or every reference forward re-patches models."""
    import align.training.trainer as trainer_module

    reference = load_model(str(tiny_model_dir), dtype="float32")
    trainer = _full_fine_tuning(tiny_model_dir, _config(tmp_path, SMALL), "dpo", ref_model=reference)
    assert trainer.accelerator.unwrap_model(trainer.ref_model) is reference
    for model in (trainer.model, reference):
        assert model._align_completion_logps
        assert attention_implementation(model).startswith("align-segments:")

    def refuse(*_):
        raise AssertionError("a model was prepared during a forward")

    monkeypatch.setattr(trainer_module, "add_completion_logps", refuse)
    monkeypatch.setattr(trainer_module, "use_segment_attention", refuse)
    batch = next(iter(trainer.get_train_dataloader()))
    chosen, rejected = trainer.compute_ref_log_probs(trainer.model, batch)
    assert chosen.shape == rejected.shape == (2,)


def test_the_reference_precompute_runs_on_prepared_models(tiny_model_dir, tmp_path):
    """trl precomputes reference log-probs inside its own `__init__`, before `ContrastiveTrainer.__init__` can do
    anything after it: the models must be prepared first (the precompute calls align's completion-only path). If
    this fails, constructing a trainer with `precompute_ref_log_probs: true` crashes or scores with trl's head."""
    config = _config(tmp_path, {**SMALL, "precompute_ref_log_probs": True})
    trainer = _full_fine_tuning(tiny_model_dir, config, "dpo")
    assert trainer.ref_model is None  # trl keeps no reference: the policy computed it before training
    assert trainer.train_dataset["ref_chosen_logps"][0] < 0


def test_the_model_patches_are_idempotent(tiny_model_dir):
    """Preparing a prepared model changes nothing: the same forward (not a wrapper of a wrapper) and the same
    attention implementation (not `align-segments:align-segments:sdpa`). If this fails, preparing at each point trl
    may first run a model stacks patches, and log-probs run through the patched path twice."""
    model = load_model(str(tiny_model_dir), dtype="float32")
    add_completion_logps(model)
    use_segment_attention(model)
    forward, implementation = model.forward, attention_implementation(model)
    add_completion_logps(model)
    use_segment_attention(model)
    assert model.forward is forward
    assert attention_implementation(model) == implementation == "align-segments:sdpa"
