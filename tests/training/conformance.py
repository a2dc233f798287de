"""The conformance matrix's model families: tiny random models built from transformers' own config classes.

Each row is a family as users meet it, with the features that make it differ from Llama switched on at sizes the test
sequences reach (windows shorter than the sequences, soft-caps that bite, logit scales far from 1, router losses on).
Adding a family is one row here; `tests/training/test_conformance.py` runs every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import transformers
from peft import LoraConfig, get_peft_model

from align.training.logprobs import add_completion_logps
from align.training.multi_negative import MultiNegativeCollator
from align.training.packed_batch import PackedBatch
from align.training.packing import PackedPreferenceCollator
from align.training.segment_attention import use_segment_attention

VOCAB = 97
COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=256,
    tie_word_embeddings=False,
)


@dataclass(frozen=True)
class Family:
    """config: transformers config class name; options: its non-default settings; attention: the implementation the
    family needs (`eager` where SDPA cannot express the family's attention, e.g. soft-capped scores or sinks)."""

    config: str
    options: dict = field(default_factory=dict)
    attention: str = "sdpa"


FAMILIES: dict[str, Family] = {
    "llama": Family("LlamaConfig"),
    "mistral-window": Family("MistralConfig", {"sliding_window": 4}),
    "qwen2": Family("Qwen2Config"),
    "qwen3": Family("Qwen3Config"),
    "gemma2-softcap-window": Family(
        "Gemma2Config",
        {
            "sliding_window": 4,
            "attn_logit_softcapping": 2.0,
            "final_logit_softcapping": 3.0,
            "query_pre_attn_scalar": 8,
        },
        attention="eager",
    ),
    "gemma3-window": Family(
        "Gemma3TextConfig", {"sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"]}
    ),
    "phi3": Family("Phi3Config", {"pad_token_id": 0}),
    "cohere-logit-scale": Family("CohereConfig", {"logit_scale": 0.3}),
    "granite-logits-scaling": Family(
        "GraniteConfig",
        {"logits_scaling": 4.0, "embedding_multiplier": 2.0, "residual_multiplier": 0.5, "attention_multiplier": 0.2},
    ),
    "mixtral-router-loss": Family(
        "MixtralConfig",
        {"num_local_experts": 4, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.05, "sliding_window": 4},
    ),
    "gpt-oss-sinks-window": Family(
        "GptOssConfig",
        {
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "router_aux_loss_coef": 0.0,
            "sliding_window": 4,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        attention="eager",
    ),
    "olmo2": Family("Olmo2Config"),
    "lfm2-hybrid": Family("Lfm2Config", {"layer_types": ["conv", "full_attention"], "pad_token_id": 0}),
}


def build_family(name: str, vocab_size: int, seed: int = 0):
    """A tiny random fp32 model of family `name` with `vocab_size` tokens (weights drawn with `seed`)."""
    family = FAMILIES[name]
    config_class = getattr(transformers, family.config)
    config = config_class(**{**COMMON, "vocab_size": vocab_size, **family.options})
    config._attn_implementation = family.attention
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _perturb_zero_parameters(model, seed)
    return model.eval()


def _perturb_zero_parameters(model, seed: int) -> None:
    """Random init leaves some parameters at exactly zero or one (norm weights, attention sinks): give them small
    random values so a path that ignored them would show."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or "sinks" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def tokenised_rows(k: int = 1) -> list[dict]:
    """Three tokenised rows with K rejected answers; prompts 5/7/3 tokens, answers up to 9 tokens (longer than the
    4-token windows); in the last row every answer opens with the same two tokens (the packed layout shares them)."""
    generator = torch.Generator().manual_seed(3)

    def ids(n: int) -> list[int]:
        return torch.randint(1, VOCAB, (n,), generator=generator).tolist()

    rows = []
    for index, (prompt, chosen, rejected) in enumerate(((5, 9, 4), (7, 3, 8), (3, 6, 6))):
        row = {"prompt_ids": ids(prompt), "chosen_ids": ids(chosen)}
        answers = [ids(rejected) for _ in range(k)]
        if index == 2:
            answers = [row["chosen_ids"][:2] + answer[2:] for answer in answers]
        row["rejected_ids"] = answers if k > 1 else answers[0]
        rows.append(row)
    return rows


def trl_sequences(rows: list[dict]) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per sequence in trl's order: the chosen answers, then each block of rejected."""
    answers = []
    for row in rows:
        rejected = row["rejected_ids"]
        answers.append([row["chosen_ids"], *(rejected if isinstance(rejected[0], list) else [rejected])])
    return [
        (row["prompt_ids"] + answers[i][j], len(row["prompt_ids"]))
        for j in range(len(answers[0]))
        for i, row in enumerate(rows)
    ]


def plain_logps(model, sequences) -> torch.Tensor:
    """Hugging Face's own forward, one sequence at a time: summed log-probs of the answer tokens."""
    totals, device = [], model.device
    for ids, prompt in sequences:
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, :-1].float()
        token_logps = logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:], device=device).unsqueeze(-1)).squeeze(-1)
        totals.append(token_logps[prompt - 1 :].sum())
    return torch.stack(totals)


def lora(model, seed: int = 0):
    """LoRA r 4 on every linear layer, B drawn non-zero so every LoRA weight gets a gradient."""
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    return peft_model


def align_logps(peft_model, rows, layout: str) -> torch.Tensor:
    """align's completion log-probs of `rows` in `layout` (trl's sequence order), on the model's device."""
    base = peft_model.get_base_model()
    add_completion_logps(base, chunk_tokens=5)
    if layout == "packed":
        use_segment_attention(base)
        packed = PackedBatch.from_inputs(_on(PackedPreferenceCollator()(rows), base.device))
        return peft_model(
            input_ids=packed.input_ids, position_ids=packed.position_ids, completion_logps=True, packed=packed
        ).logps
    batch = _on(MultiNegativeCollator(pad_token_id=0)(rows), base.device)
    return peft_model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        completion_mask=batch["completion_mask"],
        completion_logps=True,
    ).logps


def _on(batch: dict, device) -> dict:
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
