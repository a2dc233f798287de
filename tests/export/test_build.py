"""`run_export` on an adapter folder: a merged model plain transformers loads with base + adapter's answers, dtype and
shards as asked, an adapter-only export that names its base, and refusals before any model is loaded."""

import json
from pathlib import Path

import pytest

from align.errors import AlignError
from align.export.build import ExportRequest, run_export
from tests.export.conftest import greedy_answers


@pytest.fixture(scope="module")
def merged(random_adapter, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "model"
    result = run_export(ExportRequest(source=str(random_adapter), output_dir=str(out)))
    assert result.artifact == "merged" and result.folder == out.resolve() and result.url is None
    return out


def test_merged_model_answers_like_base_plus_adapter_without_align(merged, random_adapter, tiny_model_dir):
    """The merged folder loads with AutoModelForCausalLM in a process that imports neither align nor peft and gives
    the same greedy tokens as the base model with the adapter on top. If this fails, the merge lost or doubled the
    adapter, or the export needs align to load."""
    alone = greedy_answers("merged", merged)
    reference = greedy_answers("base+adapter", random_adapter, base=tiny_model_dir)
    assert alone["imported"] == [] and alone["answers"] == reference["answers"]
    # The adapter moves the answers, so equal answers are the adapter's, not the base model's.
    assert greedy_answers("merged", tiny_model_dir)["answers"] != reference["answers"]
    names = {path.name for path in merged.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "README.md"} <= names
    assert "chat_template.jinja" in names or "chat_template" in (merged / "tokenizer_config.json").read_text()
    assert not any(name.startswith("adapter_") for name in names)
    assert all(path.stat().st_mode & 0o044 == 0o044 for path in merged.iterdir()), "export not readable by others"


def test_merged_weights_differ_from_the_base(merged, tiny_model_dir):
    """The adapter's change is in the merged weights (an export of the unchanged base would also pass the greedy
    comparison when the adapter barely moves the answers)."""
    from safetensors.torch import load_file

    base, tuned = load_file(tiny_model_dir / "model.safetensors"), load_file(merged / "model.safetensors")
    changed = [name for name in base if not (base[name] == tuned[name]).all()]
    assert any("q_proj" in name for name in changed) and set(tuned) == set(base)


def test_dtype_and_shards_as_asked(random_adapter, tmp_path):
    """--dtype bfloat16 writes bf16 weights and config, and a small --max-shard-size splits them into indexed
    shards that still load. If this fails, the flags are ignored (a large model would be one huge fp32 file)."""
    out = tmp_path / "bf16"
    run_export(ExportRequest(source=str(random_adapter), output_dir=str(out), dtype="bfloat16", max_shard_size="100KB"))
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert (out / "model.safetensors.index.json").exists() and len(list(out.glob("model-*.safetensors"))) > 1
    assert greedy_answers("merged", out)["dtype"] == "torch.bfloat16"


def test_adapter_only_names_its_base_and_carries_tokenizer_and_card(random_adapter, tiny_model_dir, tmp_path):
    """--adapter-only with --model: the adapter's weights, its config naming that base, the base's tokenizer and a
    card; peft's AutoPeftModelForCausalLM loads it alone. If this fails, the adapter only works where it was
    trained."""
    out = tmp_path / "adapter"
    request = ExportRequest(
        source=str(random_adapter), output_dir=str(out), adapter_only=True, model=str(tiny_model_dir)
    )
    assert run_export(request).artifact == "adapter"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: peft" in card and "No align run record" in card
    loaded = greedy_answers("auto-peft", out)
    assert loaded["answers"] == greedy_answers("base+adapter", random_adapter, base=tiny_model_dir)["answers"]


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"output_dir": None}, "--output-dir"),
        ({"private": True}, "--private"),
        ({"push_to_hub": "not a repo/id/x"}, "--push-to-hub"),
        ({"max_shard_size": "big"}, "--max-shard-size"),
        ({"adapter_only": True, "dtype": "float16"}, "--dtype"),
    ],
)
def test_contradictory_flags_are_refused_first(random_adapter, tmp_path, changes, flag):
    """Each bad flag is one line naming it, before any model loads. If this fails, a typo costs a full merge (or a
    --private without a push is silently ignored)."""
    request = ExportRequest(**{"source": str(random_adapter), "output_dir": str(tmp_path / "o"), **changes})
    with pytest.raises(AlignError) as info:
        run_export(request)
    assert str(info.value).startswith(flag) and "\n" not in str(info.value)


def test_non_empty_output_needs_overwrite_and_a_failed_export_leaves_nothing(random_adapter, tmp_path):
    """An existing export is never replaced without --overwrite; an export that fails (adapter on the wrong base
    model) leaves neither the folder nor staging leftovers. If this fails, a half-written folder looks finished."""
    from align.models import build_tiny_model

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    with pytest.raises(AlignError, match="not empty"):
        run_export(ExportRequest(source=str(random_adapter), output_dir=str(taken)))
    other = build_tiny_model(tmp_path / "other", hidden_size=32)
    with pytest.raises(AlignError, match="does not fit the base model"):
        run_export(ExportRequest(source=str(random_adapter), output_dir=str(tmp_path / "out"), model=str(other)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "taken"]
