"""A stand-in for greedy generation in probe tests: answers looked up by prompt, the adapter's or the base model's.

`FakeModel` answers each prompt from `TUNED` (or its own `tuned` overrides) while its adapter is on and from `BASE`
inside `disable_adapter()`, and records every generation call; `fake_generate` replaces
`align.evaluation.probes.generate_answers`, reporting an answer as cut at the length cap when its token count reaches
`max_new_tokens`.
"""

from __future__ import annotations

from contextlib import contextmanager

from align.evaluation.generation import GeneratedAnswer

PROMPTS = [
    {"prompt": "How do I list hidden files?", "key_points": ["run ls -a", "dotfiles"], "reference": "Run `ls -a`."},
    {"prompt": "How long do I boil an egg?", "key_points": ["nine minutes"]},
    {"prompt": "A third prompt, past max_prompts.", "key_points": ["never asked"]},
]
# (answer, generated token count). Base: recall 1.0 and 1.0; tuned: 0.5 ("dotfiles" missing) and 1.0.
BASE = {
    PROMPTS[0]["prompt"]: ("Great question! Run ls -a to show dotfiles.", 12),
    PROMPTS[1]["prompt"]: ("Boil it for nine minutes.", 8),
    PROMPTS[2]["prompt"]: ("Base third.", 5),
}
TUNED = {
    PROMPTS[0]["prompt"]: ("Run ls -a.", 4),
    PROMPTS[1]["prompt"]: ("Nine minutes.", 3),
    PROMPTS[2]["prompt"]: ("Tuned third.", 2),
}


class FakeModel:
    def __init__(self):
        self.adapter_on = True
        self.calls: list[dict] = []
        self.tuned: dict[str, tuple[str, int]] = {}

    @contextmanager
    def disable_adapter(self):
        self.adapter_on = False
        try:
            yield
        finally:
            self.adapter_on = True


def fake_generate(model, tokenizer, prompts, max_new_tokens=192, batch_size=8, progress=None):
    model.calls.append(
        {
            "adapter_on": model.adapter_on,
            "prompts": list(prompts),
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
        }
    )
    answers = {**TUNED, **model.tuned} if model.adapter_on else BASE
    return [GeneratedAnswer(*answers[prompt], answers[prompt][1] >= max_new_tokens) for prompt in prompts]
