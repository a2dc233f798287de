"""The recipe's typed configuration: one dataclass per YAML mapping, every field documented once here (the on-policy
sampling settings, `data.generate`, in `generate_schema.py`).

`training:` passes through to trl's `DPOConfig`, `peft:` to peft's `LoraConfig` and `model.quantization` to
transformers' `BitsAndBytesConfig`, so their own validation and documentation apply to those keys;
`align validate --explain training.learning_rate` prints theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from align.recipe.doc_field import doc
from align.recipe.generate_schema import GenerateConfig
from align.stages import DEFAULT_KIND, STAGE_KINDS


@dataclass
class ModelConfig:
    """The base model every stage trains an adapter on."""

    name: str = doc(
        "A short name (`smollm2-135m-instruct`, the embedded default; `tiny-llama` for smoke tests), a local Hugging "
        "Face model folder, or a Hub id.",
        default="smollm2-135m-instruct",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = doc(
        "Weights dtype. `auto` is bfloat16 on a CUDA GPU that supports it and float32 elsewhere.", default="auto"
    )
    attn_implementation: str | None = doc(
        "transformers attention backend (`sdpa`, `eager`, `flash_attention_2`); unset lets transformers choose.",
        default=None,
    )
    trust_remote_code: bool = doc(
        "Run Python code shipped with the model. Off unless set; a run that sets it logs a warning.", default=False
    )
    quantization: dict = doc(
        "Load the base model quantised with bitsandbytes, for QLoRA: arguments for transformers' "
        "`BitsAndBytesConfig`, e.g. `{load_in_4bit: true, bnb_4bit_quant_type: nf4, bnb_4bit_compute_dtype: "
        "bfloat16, bnb_4bit_use_double_quant: true}`. The LoRA adapter trains on the frozen 4-bit "
        "(or 8-bit, `load_in_8bit`) weights, after peft's `prepare_model_for_kbit_training`. Training needs a CUDA "
        "GPU and `pip install bitsandbytes`; validating does not. Empty (the default) loads the model unquantised in "
        "`dtype`; `load_in_4bit: false` turns an inherited setting off. Meant for one GPU or DDP (each process loads "
        "its own copy onto its GPU); sharding a quantised model with FSDP or ZeRO-3 is not supported.",
        default_factory=dict,
    )


@dataclass
class SourceConfig:
    """One source of rows: a file, a `datasets.save_to_disk` folder, or a Hub dataset id."""

    path: str = doc(
        "A JSONL, JSON, CSV or Parquet file or a save_to_disk folder (relative to the recipe), or a Hub dataset id. "
        "Preference stages read `prompt`, `chosen`, `rejected` (a string, or a list for K negatives); sft stages "
        "read `prompt` and `completion` (or `chosen`); kto stages read `prompt`, `completion`, `label` (or pairs). "
        "Other columns are kept (e.g. `kind`)."
    )
    format: Literal["auto", "standard", "conversational", "implicit_prompt", "kto"] = doc(
        "Row format: `standard` strings; `conversational` {role, content} message lists; `implicit_prompt` only "
        "`chosen`/`rejected` transcripts whose shared beginning is the prompt; `kto` prompt, completion and a "
        '`label` (true = desirable, false = undesirable; 1/0 and "true"/"false" text too) for kto stages; '
        "`auto` detects it from the first row. sft stages always read prompt → completion rows. Scored "
        "multi-completion data becomes pairs with `align data build` first.",
        default="auto",
    )
    columns: dict = doc(
        "Column mapping from align's names to the source's, e.g. `{prompt: question, chosen: good, rejected: bad}`.",
        default_factory=dict,
    )
    split: str = doc("The split to read from a save_to_disk folder or Hub dataset.", default="train")
    weight: float = doc(
        "Mixture weight of this source when the stage's `data.mix_total` draws a fixed number of rows.", default=1.0
    )
    kinds: list[str] = doc(
        "Keep only this source's rows whose `kind` column is one of these (e.g. `[incomplete]`), before the stage's "
        "own filters; empty keeps every row. Rows left out are counted in summary.json (`filtered_by_source_kind`).",
        default_factory=list,
    )
    max_rows: int | None = doc(
        "Read at most this many of this source's rows (after its `kinds`): a seeded sample, in file order, so a "
        "large file can join a stage as a small share. Rows left out are counted in summary.json "
        "(`unused_by_source_max_rows`); unset = all.",
        default=None,
    )


@dataclass
class DataConfig:
    """Where a stage's rows come from."""

    train: list[SourceConfig] = doc(
        "Training sources (at least one, unless `generate` makes the stage's rows).", default_factory=list
    )
    eval: list[SourceConfig] = doc(
        "Held-out pair sources for the stage's evaluation (reward accuracy, margins).", default_factory=list
    )
    eval_fraction: float = doc(
        "If `eval` is empty, hold out this fraction of the training rows (by a seeded shuffle) for evaluation.",
        default=0.0,
    )
    mix_total: int | None = doc(
        "Draw this many training rows across the `train` sources in proportion to their weights (seeded, without "
        "replacement; a source short of its share gives all it has, reported in summary.json). Unset keeps every "
        "row of every source.",
        default=None,
    )
    kinds: list[str] = doc(
        "Keep only rows whose `kind` column is one of these (e.g. `[verbose, vague]`); empty keeps every row. "
        "Held-out rows are filtered the same way. The number of rows filtered out is reported in summary.json.",
        default_factory=list,
    )
    difficulties: list[str] = doc(
        "Keep only rows whose `difficulty` column is one of these (`easy`, `medium`, `hard`); empty keeps every row.",
        default_factory=list,
    )
    min_margin: float | None = doc(
        "Keep only rows whose `margin` column (the scorer's margin written by `align data build`) is at least this.",
        default=None,
    )
    order: Literal["shuffled", "easy_to_hard", "as_is"] = doc(
        "Training order: `shuffled` (seeded); `easy_to_hard` (difficulty easy → medium → hard, larger margins first "
        "within a difficulty; kept under several processes, which take consecutive batches in turn); `as_is` (file "
        "order). The last two train with a sequential sampler.",
        default="shuffled",
    )
    max_rows: int | None = doc(
        "Use at most this many training rows (after the seeded shuffle, or in file order when `order` is not "
        "`shuffled`); unset = all.",
        default=None,
    )
    max_eval_rows: int | None = doc(
        "Evaluate on at most this many held-out rows (the first ones, in file order); unset = all.", default=None
    )
    generate: GenerateConfig | None = doc(
        "Make the stage's training rows by sampling the current policy on prompts (on-policy); joined by any "
        "`train` sources. Unset: the stage trains on its sources only.",
        default=None,
    )
    bad_rows: Literal["error", "drop"] = doc(
        "What a bad row does (unreadable line, missing/empty field, wrong type, chosen identical to rejected, a repeat "
        "of an earlier row): `error` stops the run naming file, line and field; `drop` leaves it out, and every "
        "dropped row is counted by reason in the log and in summary.json (`dropped_bad_rows`). `align data inspect` "
        "lists them all beforehand.",
        default="error",
    )


@dataclass
class LossConfig:
    """One loss term: `{name: dpo, beta: 0.1}`. Keys other than `name` and `weight` are the loss's parameters."""

    name: str = doc("A registered loss name (`align validate --explain loss` lists them).")
    weight: float = doc("Weight of this term in the sum, when `loss` is a list.", default=1.0)
    params: dict = doc("The loss's hyper-parameters, written beside `name` (e.g. `beta`).", default_factory=dict)
    rewards: bool = doc(
        "Report this term's implicit rewards (`rewards/*` metrics, the `min_pair_accuracy` gate). Needed only when "
        "several terms give preference rewards (an `sft` term gives none): which one is measured is never list order.",
        default=False,
    )


@dataclass
class GatesConfig:
    """Thresholds a stage must meet after training, or the run stops (exit 1) naming the gate and the miss.

    Probe figures compare the stage's adapter with the base model (adapters off) on `eval.prompts`; the base
    model's answers are generated once per run and reused by every stage.
    """

    max_mean_tokens_ratio: float | None = doc(
        "Most the mean probe answer length (tokens) may be, as a fraction of the base model's: 0.8 demands answers "
        "at least 20% shorter. Needs `eval.prompts`.",
        default=None,
    )
    min_pair_accuracy: float | None = doc(
        "Least held-out reward accuracy (share of held-out pairs whose chosen answer gets the higher implicit "
        "reward, in [0, 1]). Needs held-out pairs: `data.eval` or `data.eval_fraction`; preference stages only.",
        default=None,
    )
    max_key_point_recall_drop: float | None = doc(
        "Most the mean key-point recall on the probe prompts may fall below the base model's, in absolute recall "
        "([0, 1]; 0.05 = five points). Guards against concise-but-incomplete. Needs `eval.prompts` with `key_points`.",
        default=None,
    )
    max_loop_rate: float | None = doc(
        "Most the share of probe answers that loop may be, in [0, 1] (an answer loops when it repeats a sentence or "
        "list item, or a phrase four times back to back: `align.data.repetition`). Needs `eval.prompts`.",
        default=None,
    )
    max_loop_rate_increase: float | None = doc(
        "Most the probe loop rate may rise above the base model's, in [-1, 1] (tuned − base share of answers that "
        "loop; 0 = no more looping than the base model). Needs `eval.prompts`.",
        default=None,
    )


@dataclass
class StageEvalConfig:
    """What a stage checks after training besides its held-out pairs (those are `data.eval`): probe prompts
    answered by the adapter and the base model, and the gates."""

    prompts: str | None = doc(
        "A JSONL file of probe prompts (`prompt`, optional `key_points`), relative to the recipe: answered greedily "
        "after the stage by the adapter and by the base model; figures go to summary.json and metrics.jsonl.",
        default=None,
    )
    max_prompts: int | None = doc("Use at most this many probe prompts (the first ones); unset = all.", default=16)
    max_new_tokens: int = doc("Answer length cap for probe answers, in tokens.", default=160)
    batch_size: int = doc("Probe prompts per generation batch.", default=8)
    gates: GatesConfig = doc("Thresholds the stage must meet.", default_factory=GatesConfig)


@dataclass
class StageConfig:
    """One stage of the curriculum: its data, loss and training arguments. The adapter is carried forward."""

    name: str = doc("Unique stage name; outputs go to `OUTPUT/<name>/`. Letters, digits, `-` and `_`.")
    data: DataConfig = doc("The stage's data sources.")
    kind: str = doc(
        "The stage's kind (one registered in `align.stages`). "
        + " ".join(f"`{name}`: {kind.description}." for name, kind in STAGE_KINDS.items()),
        default=DEFAULT_KIND,
    )
    loss: list[LossConfig] = doc(
        "Preference stages: one loss `{name: dpo, beta: 0.1}` or a weighted list "
        "`[{name: dpo}, {name: sft, weight: 0.2}]`. Not used by sft stages.",
        default_factory=lambda: [LossConfig(name="dpo")],
    )
    adapter: Literal["continue", "new"] = doc(
        "`continue`: train the adapter the previous stage produced (the curriculum default). `new`: start a fresh LoRA "
        "adapter from `peft` on the base model (the earlier stages' adapters stay saved in their folders).",
        default="continue",
    )
    reference: Literal["base", "previous", "none"] = doc(
        "The reference policy of reference-based losses. `base`: the base model (the adapter disabled). `previous`: "
        "a frozen copy of the adapter this stage starts from, i.e. the previous stage's result (Curri-DPO); on the "
        "first stage that is a fresh adapter, so it equals `base`. Both live in the one model: no second copy. "
        "`none`: no reference at all; only reference-free losses (simpo, cpo, orpo, sft) are allowed.",
        default="base",
    )
    batch_layout: Literal["packed", "padded"] = doc(
        "Preference and sft stages: how a batch is laid out for the model. `packed`: preference rows' prompt (and any "
        "opening its answers share) runs once, the answers follow it without padding, attention masked so no answer "
        "sees another; sft rows (prompt + completion) follow each other without padding, attention kept per row, "
        "and only the completion tokens go through the LM head: the same loss as `padded` within float rounding, "
        "fewer tokens, no padding. `padded`: trl's layout (for sft, stock SFTTrainer), one padded row per answer; "
        "for models whose attention does not go through transformers' AttentionInterface. A packed sft stage falls "
        "back to padded, with a log line, for trl options the packed path cannot reproduce (packing, padding_free, "
        "assistant_only_loss, use_liger_kernel, loss_type dft, label_smoothing_factor).",
        default="packed",
    )
    micro_batch_tokens: int | None = doc(
        "Preference and sft stages with `batch_layout: packed`: a training batch of more packed tokens than this runs "
        "as several forward/backward passes over groups of whole rows, gradients accumulated before the optimizer "
        "step: the same loss and gradients with activation memory bounded by this many tokens. Not under DeepSpeed "
        "(use `gradient_accumulation_steps`). null: one pass per batch.",
        default=None,
    )
    training: dict = doc(
        "Arguments for trl's `DPOConfig` (learning_rate, num_train_epochs, per_device_train_batch_size, max_length, "
        "beta is set by the loss...). Merged over the recipe's top-level `training`.",
        default_factory=dict,
    )
    eval: StageEvalConfig = doc(
        "Probe prompts and gates checked after the stage trains (held-out pairs are `data.eval`).",
        default_factory=StageEvalConfig,
    )


@dataclass
class Recipe:
    """A training recipe: a base model, an adapter, and stages run in order."""

    name: str = doc("The run's name: default output folder `runs/<name>` and tracker run name.")
    stages: list[StageConfig] = doc("The stages, run in order (at least one).")
    model: ModelConfig = doc("The base model.", default_factory=ModelConfig)
    base: str | None = doc(
        "Another recipe this one extends, relative to this file: mappings merge key by key, `stages` merge by stage "
        "name (a stage with a new name is appended), any other value here replaces the base's. `${env:VAR}` in any "
        "string value is replaced by that environment variable.",
        default=None,
    )
    peft: dict = doc(
        "Arguments for peft's `LoraConfig` (r, lora_alpha, lora_dropout, target_modules...).",
        default_factory=lambda: {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"},
    )
    training: dict = doc(
        "`DPOConfig` arguments shared by every stage; a stage's own `training` wins.", default_factory=dict
    )
    output_dir: str | None = doc("Where outputs go; default `runs/<name>`. `--output-dir` overrides it.", default=None)
    seed: int = doc("Seed for data shuffling, adapter initialisation and training.", default=42)
    report_to: list[Literal["none", "wandb", "tensorboard"]] = doc(
        "Where metrics go besides `OUTPUT/metrics.jsonl`: a tracker name or a list of them (`[wandb, tensorboard]`); "
        "`none` (or `[]`) for none. `wandb`: one run per `align train` (project $WANDB_PROJECT or `align`, run folder "
        "under $WANDB_DIR when set, else OUTPUT/wandb/; every metric as `<stage>/<key>` and `all/<key>` on one "
        "`global_step` axis, trainer logs also as trl's `train/<key>` and `eval/<key>`; the resolved recipe as "
        "config and artifact; probe answers as generation tables; offline, with a one-line hint, without an API "
        "key). `tensorboard`: event files in OUTPUT/tensorboard/ with the same names (needs `pip install "
        "tensorboard`).",
        default_factory=list,
    )
