"""Token lengths of rows the way trl builds the training sequences: the chat template around the prompt (with the
generation prompt), then the answer and the end-of-turn tokens the template adds."""

from __future__ import annotations


def _prompt_messages(prompt) -> list[dict]:
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


def _ids(tokenizer, messages: list[dict], generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return list(encoded["input_ids"])


def sequence_lengths(tokenizer, prompt: str, answers: list[str]) -> tuple[int, list[int]]:
    """`(prompt_tokens, [full sequence tokens per answer])` for one prompt and its answers.

    With a chat template, the prompt is the user turn plus the assistant header and each sequence is the whole
    conversation; without one, the plain texts are concatenated (the answer gets an EOS token, as trl adds one).
    """
    if getattr(tokenizer, "chat_template", None):
        messages = _prompt_messages(prompt)
        prompt_len = len(_ids(tokenizer, messages, True))
        full = [len(_ids(tokenizer, messages + [{"role": "assistant", "content": a}], False)) for a in answers]
        return prompt_len, full
    prompt_len = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    answer_lens = [len(ids) + 1 for ids in tokenizer(list(answers), add_special_tokens=False)["input_ids"]]
    return prompt_len, [prompt_len + n for n in answer_lens]
