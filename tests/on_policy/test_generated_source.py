"""A stage's generated rows as a source, wherever the output folder is given relative to."""

import json
from types import SimpleNamespace

from align.on_policy.generated import REPORT_FILE, generated_source
from align.outputs import RunOutputs
from align.recipe import load_recipe
from align.selection import stage_rows

RECIPE = """
name: r
model: {name: tiny-llama}
stages:
  - name: self
    data:
      generate: {prompts: prompts.jsonl, samples: 2}
"""


def test_rows_are_read_from_an_output_folder_relative_to_the_cwd(tmp_path, monkeypatch):
    """The recipe lives in recipes/, the run is `--output-dir runs/x` from another working folder (what `make demo`
    does): the generated rows are found there, not under the recipe's folder. If this fails, every on-policy stage
    run with a relative output folder dies after sampling with "generated.jsonl: no such file"."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "prompts.jsonl").write_text('{"prompt": "How?"}\n')
    (recipes / "r.yaml").write_text(RECIPE)
    work = tmp_path / "work"
    (work / "runs" / "x" / "self").mkdir(parents=True)
    monkeypatch.chdir(work)
    row = {"prompt": "How?", "chosen": "Do it.", "rejected": "Well, it depends on many things."}
    (work / "runs" / "x" / "self" / "generated.jsonl").write_text(json.dumps(row) + "\n")
    (work / "runs" / "x" / "self" / REPORT_FILE).write_text(json.dumps({"rows": 1}))
    loaded = load_recipe(recipes / "r.yaml")
    stage = loaded.recipe.stages[0]
    run = SimpleNamespace(outputs=RunOutputs("runs/x"), tokenizer=None)
    generated = generated_source(run, loaded, stage, model=None, seed=0)  # a resumed run's rows: no sampling
    assert generated.reused
    rows = stage_rows(loaded, stage, seed=0, generated=generated.source)
    assert [r.chosen for r in rows.train] == ["Do it."]
