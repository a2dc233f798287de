"""The model card (README.md) of an adapter or merged model: Hub metadata header, how to load it, how it was trained
and what it measured, from a stage's `StageFacts`."""

from __future__ import annotations

from pathlib import Path

from align.export.facts import StageFacts
from align.models import hub_model_id, short_model_names

ADAPTER, MERGED = "adapter", "merged"
_PROMPT = "How do I undo my last git commit but keep the changes?"


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub model id (`org/name` or `name`), not a local folder."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith(("/", ".", "~")) or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}"


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_number(cell) for cell in row) + " |" for row in rows]


def _load_section(artifact: str, base_name: str, load_from: str) -> list[str]:
    """How to load the artifact with transformers (and peft), without align."""
    if artifact == ADAPTER:
        imports = "from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n"
        load = f'model = AutoPeftModelForCausalLM.from_pretrained("{load_from}")'
        where = (
            f"The base model, `{base_name}`, comes from the Hub or the Hugging Face cache."
            if is_hub_id(base_name)
            else f"`adapter_config.json` names the base model by its folder on the training machine (`{base_name}`); "
            "elsewhere, set `base_model_name_or_path` there to the base model's folder or Hub id."
        )
    else:
        imports = "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        load = f'model = AutoModelForCausalLM.from_pretrained("{load_from}")'
        where = "The LoRA adapter is merged into the weights: no peft and no base model download needed."
    code = (
        f"{imports}\n{load}\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{load_from}")\n'
        f'messages = [{{"role": "user", "content": "{_PROMPT}"}}]\n'
        'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", '
        "return_dict=True)\n"
        "output = model.generate(**inputs, max_new_tokens=128, do_sample=False)\n"
        'print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))'
    )
    return ["## How to use it", "", where, "", "```python", code, "```", ""]


def _base_section(facts_base: str, base_name: str) -> list[str]:
    lines = [
        "## Base model",
        "",
        f"`{base_name}`" + (f" (the recipe's `{facts_base}`)" if facts_base != base_name else ""),
    ]
    described = short_model_names().get(facts_base)
    if described and hub_model_id(facts_base) == base_name:
        lines += [
            "",
            f"align trained on its own copy of it: {described}. Applied to the Hub's weights the adapter's answers "
            "can differ slightly; a merged export (`align export`) keeps the exact weights it was trained on.",
        ]
    return lines + [""]


def _loss_label(losses: tuple[dict, ...]) -> str:
    terms = []
    for term in losses:
        weight = term.get("weight", 1.0)
        params = ", ".join(f"{k} {_number(v)}" for k, v in term.items() if k not in ("name", "weight"))
        label = f"{term.get('name')}" + (f" ({params})" if params else "")
        terms.append(label if weight == 1.0 else f"{_number(weight)} × {label}")
    return " + ".join(terms) or "none recorded"


def _training_section(facts: StageFacts) -> list[str]:
    order = " → ".join(f"**{name}**" if name == facts.stage else name for name in facts.stage_names)
    lines = [
        "## Training",
        "",
        f"- Recipe `{facts.recipe}`, stage {facts.position} of {len(facts.stage_names)}: {order}",
        f"- Kind `{facts.kind}`, loss: {_loss_label(facts.losses)}",
        f"- {facts.steps} optimizer steps; seed {facts.seed}",
        f"- Training loss: final {_number(facts.final_train_loss)}, mean {_number(facts.mean_train_loss)}",
        "",
    ]
    settings = [(f"training.{k}", v) for k, v in facts.training.items()]
    settings += [(f"peft.{k}", v) for k, v in facts.peft.items()]
    if settings:
        lines += _table(("setting", "value"), settings) + [""]
    return lines


def _data_section(facts: StageFacts) -> list[str]:
    lines = ["## Data", ""]
    lines += [f"- training: {', '.join(f'`{s}`' for s in facts.train_sources) or 'none recorded'}"]
    if facts.eval_sources:
        lines += [f"- held out: {', '.join(f'`{s}`' for s in facts.eval_sources)}"]
    rows = [("trained on", facts.train_rows), ("held out", facts.eval_rows)]
    rows += [(key.replace("_", " "), value) for key, value in facts.row_counts.items()]
    return lines + [""] + _table(("rows", "count"), rows) + [""]


def _results_section(facts: StageFacts) -> list[str]:
    lines = ["## Results", ""]
    if facts.eval:
        lines += ["Held-out figures after this stage:", ""]
        lines += _table(("figure", "value"), sorted(facts.eval.items())) + [""]
    base = {key.removeprefix("probe/base_"): v for key, v in facts.probe.items() if key.startswith("probe/base_")}
    if base:
        own = [(name, facts.probe.get(f"probe/{name}"), value) for name, value in base.items()]
        derived = [
            (k.removeprefix("probe/"), v) for k, v in facts.probe.items() if k.removeprefix("probe/") not in base
        ]
        derived = [(name, value) for name, value in derived if not name.startswith("base_")]
        lines += ["Probe prompts, answered greedily by this model and by the base model:", ""]
        lines += _table(("figure", "this model", "base model"), own) + [""]
        lines += _table(("comparison", "value"), derived) + [""] if derived else []
    if facts.gates:
        lines += ["Gates:", ""]
        rows = [(g["gate"], g["limit"], g["value"], "passed" if g["passed"] else "MISSED") for g in facts.gates]
        lines += _table(("gate", "limit", "value", "result"), rows) + [""]
    if facts.gates_missed:
        lines += ["**This stage missed its gates; the run stopped after it:**", ""]
        lines += [f"- {line}" for line in facts.gates_missed] + [""]
    return lines if len(lines) > 2 else lines + ["No held-out or probe figures were recorded for this stage.", ""]


def render_card(facts: StageFacts | None, artifact: str, base_name: str, load_from: str) -> str:
    """README.md text for an `artifact` (ADAPTER or MERGED) of the stage `facts` describe (None: an adapter align
    has no run record of). `base_name`: the base model as the adapter names it; `load_from`: the folder or repo id
    the load example uses."""
    from huggingface_hub import ModelCardData

    tags = ["align", "lora"] + ([facts.kind] if facts else [])
    metadata = ModelCardData(
        base_model=base_name if is_hub_id(base_name) else None,
        library_name="peft" if artifact == ADAPTER else "transformers",
        pipeline_tag="text-generation",
        tags=tags if artifact == ADAPTER else tags + ["merged-lora"],
    )
    what = "LoRA adapter" if artifact == ADAPTER else "model (LoRA adapter merged into the base model)"
    if facts is None:
        title = [f"# A {what} for {base_name}", "", "No align run record was found beside the adapter.", ""]
        body = title + _load_section(artifact, base_name, load_from) + _base_section(base_name, base_name)
    else:
        title = [
            f"# {facts.recipe}: stage `{facts.stage}`",
            "",
            f"A {what} trained by align's `{facts.recipe}` "
            f"recipe, stage {facts.position} of {len(facts.stage_names)} (`{facts.kind}`).",
            "",
        ]
        body = title + _load_section(artifact, base_name, load_from) + _base_section(facts.base_model, base_name)
        body += _training_section(facts) + _data_section(facts) + _results_section(facts)
    return f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(body).rstrip() + "\n"
