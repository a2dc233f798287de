"""A tiny randomly initialised Llama with a locally trained byte-level BPE tokenizer and a ChatML chat template.

For tests and quick benchmarks: builds in a few seconds, needs no download, and exercises the same code paths as a
real chat model (chat template, special tokens, tied embeddings, grouped-query attention).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from align.models.registry import register_model

# ChatML, as SmolLM2 and Qwen use; `{% generation %}` marks assistant turns for trl's assistant-only SFT loss.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]

_BUILTIN_CORPUS = (
    "Use `ls -la` to list every file, including hidden ones. Run `git stash` before you switch branches. "
    "Preheat the oven to 200 C and bake for 25 minutes. Save 20% of your income each month. "
    "1. Turn off the water. 2. Replace the washer. 3. Test for leaks. "
    "It depends on your situation, and there are several approaches you could consider. "
    "Great question! Let me explain in detail. In summary, as mentioned above, it is important to note that "
    "SELECT name, COUNT(*) FROM users GROUP BY name; python -m venv .venv && source .venv/bin/activate "
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE tokenizer (every byte is representable) and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus) or [_BUILTIN_CORPUS], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_model(
    target: Path | str,
    corpus: Iterable[str] = (),
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised Llama and its tokenizer to `target`; return the folder.

    Sizes are in units of the Llama config (hidden width, layers, heads). The defaults give ~0.1M parameters; the
    39M benchmark model is `tiny-llama-39m`.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    target = Path(target)
    tokenizer = train_tokenizer(list(corpus) + [_BUILTIN_CORPUS], vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target


@register_model("tiny-llama", "a ~0.1M-parameter random Llama with a local byte-level tokenizer (tests, smoke runs)")
def prepare_tiny_llama(target: Path) -> None:
    build_tiny_model(target)


@register_model(
    "tiny-llama-39m",
    "a ~39M-parameter random Llama (hidden 512, 8 layers, 8 heads, 8k vocabulary): the benchmark's mid-size model",
)
def prepare_tiny_llama_39m(target: Path) -> None:
    build_tiny_model(target, vocab_size=8192, hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=8)
