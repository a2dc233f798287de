"""Every private name of trl and transformers that align relies on, in one place, checked when align imports it.

A private name can change in any release. Each is listed in `PRIVATE_NAMES` with what align uses it for; importing
this module checks every one of them and, if one is missing, stops with one line naming it and the versions CI
passed (`TESTED_VERSIONS`, also the upper bounds in `setup.cfg`). Code elsewhere in align reaches these names only
through the accessors and names below, or — for the trainer methods align overrides — by the names listed here
(tests/training/test_private_api.py checks both from align's source).
"""

from __future__ import annotations

import importlib
import sys

from align.errors import AlignError

# The newest versions CI has run; setup.cfg's upper bounds admit these minor releases and nothing newer.
TESTED_VERSIONS = {"transformers": "5.25.0", "trl": "1.16.0", "peft": "0.21.2", "accelerate": "1.16.0"}

# (module, attribute path, what align uses it for)
PRIVATE_NAMES: tuple[tuple[str, str, str], ...] = (
    ("trl.trainer.dpo_trainer", "DPOTrainer._compute_loss", "align's loss step replaces trl's"),
    ("trl.trainer.dpo_trainer", "DPOTrainer._prepare_dataset", "tokenising rows with K rejected answers"),
    ("trl.trainer.dpo_trainer", "DPOTrainer._set_signature_columns_if_needed", "keeping the length column"),
    ("trl.trainer.dpo_trainer", "DPOTrainer.compute_ref_log_probs", "completion-only reference log-probs"),
    ("trl.trainer.dpo_trainer", "DPOTrainer._precompute_ref_logps", "preparing align's models before trl's precompute"),
    ("trl.trainer.dpo_trainer", "DataCollatorForPreference", "the padded collator for K rejected answers"),
    ("trl.trainer.sft_trainer", "SFTTrainer._get_num_items_in_batch", "counting a packed SFT batch's trained tokens"),
    ("trl.trainer.utils", "use_adapter", "the reference: adapters off, or trl's frozen `ref` adapter"),
    ("trl.trainer.utils", "pad", "padding K rejected answers as trl pads pairs"),
    ("trl.data_utils", "_tokenize", "tokenising K rejected answers exactly as trl tokenises pairs"),
    ("trl.data_utils", "common_prefix_length", "the prompt/completion split of K rejected answers"),
    ("transformers.modeling_utils", "ALL_ATTENTION_FUNCTIONS", "registering the segment attention backend"),
    ("transformers.masking_utils", "ALL_MASK_ATTENTION_FUNCTIONS", "its mask builder (the backend's own)"),
    ("transformers.configuration_utils", "PretrainedConfig._attn_implementation", "switching to the backend"),
    ("transformers.modeling_utils", "PreTrainedModel._supports_attention_backend", "which models route attention"),
)
# Trainer attributes set in `__init__` (not checkable on the class): trl's metrics store, its tokenizer, the columns
# the data loader keeps, whether reference log-probs were precomputed.
PRIVATE_INSTANCE_ATTRIBUTES = ("_metrics", "_tokenizer", "_signature_columns", "precompute_ref_logps")
# The same for trl's `SFTTrainer`: its metrics store and its running count of tokens trained on (`num_tokens`).
SFT_PRIVATE_INSTANCE_ATTRIBUTES = ("_metrics", "_total_train_tokens")


def _resolve(module: str, path: str):
    target = importlib.import_module(module)
    for part in path.split("."):
        target = getattr(target, part)
    return target


def check_private_names() -> None:
    """`AlignError` naming the first private name this install lacks, and the versions align was tested with."""
    for module, path, purpose in PRIVATE_NAMES:
        try:
            _resolve(module, path)
        except (ImportError, AttributeError):
            package = module.split(".")[0]
            installed = _installed_version(package)
            tested = ", ".join(f"{name} {version}" for name, version in TESTED_VERSIONS.items())
            raise AlignError(
                f"{package} {installed} lacks {module}.{path}, which align needs for {purpose}; align was tested "
                f"with {tested}: `pip install '{package}=={TESTED_VERSIONS[package]}'`"
            ) from None


def check_trainer_attributes(trainer, names: tuple[str, ...] | None = None) -> None:
    """`AlignError` unless trl's trainer set the private attributes align reads (`names`, default
    `PRIVATE_INSTANCE_ATTRIBUTES`)."""
    names = PRIVATE_INSTANCE_ATTRIBUTES if names is None else names
    missing = [name for name in names if not hasattr(trainer, name)]
    if missing:
        tested = TESTED_VERSIONS["trl"]
        raise AlignError(
            f"trl {_installed_version('trl')}'s {type(trainer).__mro__[1].__name__} no longer sets {missing[0]}, which "
            f"align reads; align was tested with trl {tested}: `pip install 'trl=={tested}'`"
        )


def _installed_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def metrics_store(trainer, mode: str) -> dict[str, list[float]]:
    """trl's per-mode (`train`/`eval`) metric lists, averaged and cleared at each `log`."""
    return trainer._metrics[mode]


def train_tokens(trainer) -> int:
    """trl `SFTTrainer`'s count of tokens trained on so far (its `num_tokens` metric)."""
    return trainer._total_train_tokens


def add_train_tokens(trainer, tokens: int) -> None:
    trainer._total_train_tokens += tokens


def trainer_tokenizer(trainer):
    """The tokenizer trl took from the trainer's processing class."""
    return trainer._tokenizer


def signature_columns(trainer) -> list[str]:
    """The dataset columns transformers' data loader keeps (set by `_set_signature_columns_if_needed`)."""
    return trainer._signature_columns


def set_signature_columns(trainer, columns: list[str]) -> None:
    trainer._signature_columns = columns


def precomputes_reference(trainer) -> bool:
    """Whether trl precomputed the reference log-probs into the datasets (the batches then carry them)."""
    return bool(trainer.precompute_ref_logps)


def trl_tokenize(processing_class, *args, **kwargs) -> dict:
    """trl's tokenisation of one example (`trl.data_utils._tokenize`), so K rejected answers split as trl's pairs do."""
    return _resolve("trl.data_utils", "_tokenize")(processing_class, *args, **kwargs)


def attention_implementation(model) -> str:
    """The attention implementation a model's forward dispatches to (transformers keeps it private)."""
    return model.config._attn_implementation or "eager"


def set_attention_implementation(model, name: str) -> None:
    model.config._attn_implementation = name


def supports_attention_backend(model) -> bool:
    """Whether `model` dispatches attention through transformers' `AttentionInterface`."""
    return bool(getattr(model, "_supports_attention_backend", False))


def architecture_function(module, name: str):
    """A function of the modeling file that defines `module`'s class, e.g. its `eager_attention_forward` (eager
    attention and the MoE load-balancing loss are defined per architecture, not registered)."""
    found = getattr(sys.modules[type(module).__module__], name, None)
    if found is None:
        raise AlignError(f"{type(module).__name__}'s modeling file has no {name}; set `batch_layout: padded`")
    return found


def router_load_balancing_loss(model, router_logits, attention_mask):
    """The MoE router load-balancing loss exactly as `model`'s own forward computes it (scalar)."""
    loss = architecture_function(model, "load_balancing_loss_func")
    return loss(router_logits, model.num_experts, model.num_experts_per_tok, attention_mask)


check_private_names()

# The listed names other modules use as they are, taken from here once the check above passed (a missing one then
# stops with its one line, never an ImportError elsewhere).
DataCollatorForPreference = _resolve("trl.trainer.dpo_trainer", "DataCollatorForPreference")
use_adapter = _resolve("trl.trainer.utils", "use_adapter")
pad = _resolve("trl.trainer.utils", "pad")
common_prefix_length = _resolve("trl.data_utils", "common_prefix_length")
ALL_ATTENTION_FUNCTIONS = _resolve("transformers.modeling_utils", "ALL_ATTENTION_FUNCTIONS")
ALL_MASK_ATTENTION_FUNCTIONS = _resolve("transformers.masking_utils", "ALL_MASK_ATTENTION_FUNCTIONS")
