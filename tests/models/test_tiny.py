"""The tiny model builder and model-name resolution."""

from pathlib import Path

import pytest

from align.errors import AlignError
from align.models import load_model, load_tokenizer, resolve_model_path


def test_tiny_model_loads_with_chat_template_and_special_tokens(tiny_model_dir):
    """Tests rely on this model behaving like a chat model: a template, EOS = end of turn, a pad token."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir), dtype="float32")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<pad>"
    ids = tokenizer("Run `ls -la` to see hidden files.")["input_ids"]
    assert tokenizer.decode(ids) == "Run `ls -la` to see hidden files."
    assert model.config.vocab_size == len(tokenizer) == 1024
    # 1024·64 tied embedding + 2 layers of 61,568 (see `_llama_parameters`) + 64 final norm.
    assert sum(p.numel() for p in model.parameters()) == _llama_parameters(1024, 64, 256, 2, 4, 2) == 188_736


def _llama_parameters(vocab, hidden, intermediate, layers, heads, kv_heads):
    """A Llama's parameter count from its sizes, by hand: tied embedding V·H (the LM head shares it); per layer
    q and o H·H each, k and v H·(H/heads·kv_heads) each, gate/up/down H·I each, two RMSNorm weights H each; a final
    RMSNorm H. No biases."""
    kv = hidden // heads * kv_heads
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate + 2 * hidden
    return vocab * hidden + layers * per_layer + hidden


def test_short_name_is_prepared_once_into_the_cache():
    """`tiny-llama` is the documented ~0.1M-parameter Llama: hidden 64, intermediate 256 (4×), 2 layers, 4 heads,
    2 KV heads (grouped-query), tied embeddings, a 512-token byte-level vocabulary → by hand 512·64 = 32,768 +
    2·(2·4,096 + 2·2,048 + 3·16,384 + 128) = 123,136 + 64 = 155,968 parameters; a ChatML template, any text round-
    trips through the tokenizer, and a second resolution reuses the folder without rewriting its weights. If this
    fails, the short name builds a different model than the one its description promises (or rebuilds it)."""
    import json

    first = Path(resolve_model_path("tiny-llama"))
    weights = first / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert Path(resolve_model_path("tiny-llama")) == first
    assert weights.stat().st_mtime_ns == written
    config = json.loads((first / "config.json").read_text())
    expected = {
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "tie_word_embeddings": True,
    }
    assert {key: config[key] for key in expected} == expected
    model = load_model(str(first), dtype="float32")
    assert sum(p.numel() for p in model.parameters()) == _llama_parameters(512, 64, 256, 2, 4, 2) == 155_968
    tokenizer = load_tokenizer(str(first))
    assert len(tokenizer) == 512
    text = "Ünïcode, tabs\tand emoji 🙂 survive: `rm -rf ./build`"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    rendered = tokenizer.apply_chat_template(chat, tokenize=False)
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n"
    assert tokenizer.eos_token == "<|im_end|>" and model.config.eos_token_id == tokenizer.eos_token_id


def test_missing_local_path_is_a_user_error(tmp_path):
    with pytest.raises(AlignError, match="no such folder"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(AlignError, match="config.json"):
        resolve_model_path(str(tmp_path))


def test_hub_ids_pass_through():
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
