"""`align eval`: generation with the chat template, figures, side-by-side output and the JSON file."""

import json

from align.cli import main
from align.evaluation.compare import answer_figures, answer_scores
from align.evaluation.generation import GeneratedAnswer, generate_answers
from align.models import load_model, load_tokenizer


def test_answer_figures_by_hand():
    answers = [("a b", 2), ("", 0), ("c d e f", 4), ("x", 10)]
    figures = answer_figures([GeneratedAnswer(text, tokens, False) for text, tokens in answers])
    assert figures == {"mean_response_tokens": 4.0, "median_response_tokens": 3.0, "empty_rate": 0.25}


def test_degeneration_figures_by_hand():
    """Four answers: "No, no, no, no, no, no" (loops, trigram share 0.75, cut at the cap), "Boil the water. Boil the
    water." (loops: a 3-word sentence twice; share 1/4 = 0.25), "Boil them." and "Run ls." (neither; 0.0).
    loop_rate = 2/4 = 0.5; repeated_ngram_share = (0.75 + 0.25 + 0 + 0)/4 = 0.25; truncated_rate = 1/4 = 0.25.
    Each answer's scores carry its `truncated` flag from generation.
    If this fails, `align eval` and the probes report a wrong share of degenerate answers."""
    answers = [
        GeneratedAnswer("No, no, no, no, no, no", 8, True),
        GeneratedAnswer("Boil the water. Boil the water.", 7, False),
        GeneratedAnswer("Boil them.", 3, False),
        GeneratedAnswer("Run ls.", 3, False),
    ]
    scores = answer_scores([{"prompt": "q"}] * 4, answers)
    assert [(s.loops, s.truncated, s.tokens) for s in scores] == [
        (True, True, 8),
        (True, False, 7),
        (False, False, 3),
        (False, False, 3),
    ]
    figures = answer_figures(answers, scores)
    assert (figures["loop_rate"], figures["repeated_ngram_share"], figures["truncated_rate"]) == (0.5, 0.25, 0.25)


def test_batched_generation_matches_one_by_one(tiny_model_dir):
    """Left padding must not change greedy answers; if it does, batched evaluation figures are wrong. An answer is
    cut at the length cap exactly when it used all 6 new tokens (an end-of-turn token inside 6 ends it at ≤ 5); if
    that fails, `truncated_rate` miscounts."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir), dtype="float32")
    prompts = ["How do I list files?", "Boil an egg?", "What is the fastest way to sort a list in Python?"]
    batched = generate_answers(model, tokenizer, prompts, max_new_tokens=6, batch_size=3)
    single = [generate_answers(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert batched == single
    assert all(0 <= answer.tokens <= 6 for answer in batched)
    assert all(answer.truncated == (answer.tokens == 6) for answer in batched)


def test_eval_cli_with_baseline_writes_every_key(tiny_model_dir, write, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    base = load_model(str(tiny_model_dir), dtype="float32")
    peft_model = get_peft_model(
        base, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear", init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    rows = [
        {"prompt": f"Question {i}?", "key_points": ["use `ls -la`"], "reference": "Run `ls -la`."} for i in range(3)
    ]
    prompts = write("prompts.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--adapter",
            str(tmp_path / "adapter"),
            "--baseline",
            "--prompts",
            str(prompts),
            "--output",
            str(out),
            "--max-new-tokens",
            "5",
            "--show",
            "1",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in (
        "mean_response_tokens",
        "median_response_tokens",
        "empty_rate",
        "filler_rate",
        "actionability",
        "key_point_recall",
        "loop_rate",
        "repeated_ngram_share",
        "truncated_rate",
        "examples",
        "baseline",
    ):
        assert key in result, key
    assert set(result["baseline"]) >= {"mean_response_tokens", "filler_rate", "key_point_recall", "loop_rate"}
    assert {"loops", "repeated_ngram_share", "truncated"} <= set(result["examples"][0]["scores"])
    example = result["examples"][0]
    assert example["reference"] == "Run `ls -la`." and example["scores"]["tokens"] == example["tokens"]
    assert len(result["examples"]) == 3 and "base_answer" in result["examples"][0]
    printed = capsys.readouterr().out
    assert "mean response tokens: base" in printed and "PROMPT: Question" in printed
    assert "answers that loop: base" in printed and "answers cut at the length cap: base" in printed
    # Where the time went, printed and written (the demo's phase times).
    assert set(result["seconds"]) == {"tuned_answers", "base_answers"} and "time: tuned answers " in printed


def test_eval_rejects_a_folder_that_is_not_an_adapter(tiny_model_dir, write, tmp_path):
    prompts = write("prompts.jsonl", '{"prompt": "q"}\n')
    code = main(["eval", "--model", str(tiny_model_dir), "--adapter", str(tmp_path), "--prompts", str(prompts)])
    assert code == 2
