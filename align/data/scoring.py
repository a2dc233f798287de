"""Deterministic, judge-free scores for answers: length, filler, restatement, actionability, key-point recall,
repetition (`align.data.repetition`).

Every metric is a transparent text heuristic (stdlib `re` only), so the same answer always gets the same score and a
pair builder or an evaluation can run it on thousands of answers without a model judge. The heuristics are tuned for
the project's notion of a good answer (see data/README.md): complete first, then actionable, then concise.

    >>> good = score_answer("How do I boil eggs?", "1. Boil water. 2. Cook eggs 11 minutes.", ["11 minutes"])
    >>> vague = score_answer("How do I boil eggs?", "It depends on your taste.", ["11 minutes"])
    >>> concise_score(good) > concise_score(vague)
    True

Tokenizers are duck-typed (anything with `encode(text, add_special_tokens=False)`), so importing this module never
imports transformers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from align.data.repetition import loops, repeated_ngram_share
from align.data.text_units import list_markers, normalise, split_sentences, strip_list_markers

# --- filler / hedging phrases -------------------------------------------------------------------------------------
# Matched case-insensitively as whole phrases (word boundaries on both sides); every occurrence counts. Phrases that
# overlap ("i'd be happy to help" / "happy to help") are counted once: the regex tries the longest phrase first.

# fmt: off
#: Preamble that delays the answer without adding content.
OPENER_PHRASES = (
    "great question", "good question", "what a great", "thanks for asking", "i'd be happy to help",
    "i would be happy to help", "happy to help", "i'm glad you asked", "glad you did", "sure!", "sure,",
    "absolutely!", "absolutely,", "of course!", "certainly!", "let's go through",
)
#: Hedges and generic caveats: they make an answer sound careful while telling the reader nothing concrete.
HEDGE_PHRASES = (
    "it depends", "depends on your", "depend on your", "depending on your", "generally speaking", "in most cases",
    "in general", "you may want to consider", "you may want to", "you might want to", "it's important to note",
    "it's worth noting", "it's important to keep in mind", "keep in mind", "everyone's situation is different",
    "everyone's circumstances are", "everyone is different", "results can vary", "results vary",
    "there are many different", "there are many ways", "a few things to consider", "it never hurts to",
    "i can't be completely certain", "i would probably", "along these lines", "may need to experiment",
    "what works best for you",
)
#: Sign-offs that invite more conversation instead of ending the answer.
CLOSER_PHRASES = (
    "i hope this helps", "hope this helps", "i hope that helps", "i hope that answers", "let me know if",
    "feel free to", "don't hesitate to", "good luck", "hopefully that", "happy to help further",
)
#: Summaries that repeat what was just said (short answers need none). "to summarise," needs its comma: without it,
#: it is the verb ("forces you to summarise in your own words").
SUMMARY_PHRASES = (
    "in summary", "to sum up", "to summarize,", "to summarise,", "in conclusion", "all in all", "in short",
)
# fmt: on

FILLER_PHRASES = OPENER_PHRASES + HEDGE_PHRASES + CLOSER_PHRASES + SUMMARY_PHRASES


def _phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so an alternation never stops at a shorter phrase nested inside a longer one; \s+ lets a phrase
    # span line breaks; (?<!\w)/(?!\w) are word boundaries that also work next to "!" or ",".
    alternatives = (r"\s+".join(map(re.escape, p.split())) for p in sorted(set(phrases), key=len, reverse=True))
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


_FILLER_RE = _phrase_regex(FILLER_PHRASES)

#: Function words ignored when comparing content ("how do i reset my password" → {reset, password}). Negations stay
#: content words on purpose: "not invested in stocks" must not match an answer that merely mentions stocks.
STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from into about as is are was were be been being it its this "
    "that these those there here i me my we our you your he she they them their what which who whom how why when "
    "where do does did doing can could should would will shall may might must so if then than just also very "
    "get got im ive id youre".split()
)

#: Verbs that open an instruction ("Run ...", "Preheat ..."): a sentence starting with one is an imperative step.
#: Grouped loosely: general, computing, household/cooking, money/travel/study. Only the base form is listed, since an
#: instruction uses the bare verb.
IMPERATIVE_VERBS = frozenset(
    (
        "add adjust aim apply ask avoid back book bring buy call cancel change check choose clear close combine "
        "compare confirm continue copy cover create cut decide delete divide do drink eat end estimate explain fill "
        "find finish fix follow give go hold include keep leave let limit list lower make mark measure mention move "
        "note offer open pause pick place plan put read record reduce remove repeat replace reply rest return review "
        "rotate save select send set share shorten skip sleep split start stay stop store switch take tell test "
        "track try turn use verify wait walk watch wear write "
        "attach build click commit disable enable enter format highlight insert install press pull push rename reset "
        "restart run search tap type unplug update "
        "bake boil chill clean cook dilute drain flush heat mix pat plug pour preheat rinse roast salt scrub sear "
        "simmer slice soak stir thaw tighten unscrew wash whisk wipe "
        "automate invest pack pay spend total transfer unsubscribe"
    ).split()
)
# Words that may precede the verb of an imperative ("Then run ...", "Never store ...", "Don't add ..."). Not "please":
# "Please keep in mind ..." is a disclaimer, not an instruction.
_IMPERATIVE_LEADS = frozenset("then first next finally also always never now just and so dont".split())

_CODE_RE = re.compile(r"`[^`\n]+`|(?:^|\s)\$ \S|(?<![\w-])--[a-z][\w-]*|\b(?:ctrl|cmd|alt|shift)\s*\+\s*\w", re.I)
# A number such as 11, 2.5, 3-6, 50/30/20 or 9:30 (counted after list markers are stripped).
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,:/–-]\d+)*")


def _content_words(text: str) -> list[str]:
    return [w for w in normalise(text).split() if w not in STOPWORDS]


def count_words(text: str) -> int:
    """Whitespace-separated words: "Great question! It depends." → 4."""
    return len(text.split())


def count_tokens(text: str, tokenizer=None) -> int:
    """The tokenizer's token count without special tokens (BOS/EOS), or `count_words` when no tokenizer is given."""
    if tokenizer is None:
        return count_words(text)
    if not text:
        return 0
    ids = tokenizer.encode(text, add_special_tokens=False)
    return len(getattr(ids, "ids", ids))  # a `tokenizers.Encoding` carries its ids in `.ids`


def filler_rate(text: str) -> float:
    """Filler and hedging phrases (FILLER_PHRASES) per 100 words; 0.0 for empty text.

    "Great question! It depends." → 2 phrases in 4 words → 50.0.
    """
    words = count_words(text)
    return 100.0 * len(_FILLER_RE.findall(text)) / words if words else 0.0


def restates_question(prompt: str, answer: str) -> float:
    """How much the answer's first sentence restates the prompt, in [0, 1].

    Definition: the share of the prompt's distinct content words (lower-cased, punctuation and STOPWORDS removed)
    that also appear in the answer's first sentence (list markers ignored). If the answer contains the whole prompt
    verbatim (after the same normalisation), the answer quotes the question and the result is 1.0. A prompt with no
    content words, or an empty answer, gives 0.0.
    """
    prompt_words = set(_content_words(prompt))
    sentences = split_sentences(answer)
    if not prompt_words or not sentences:
        return 0.0
    if normalise(prompt) and f" {normalise(prompt)} " in f" {normalise(answer)} ":
        return 1.0
    first = set(_content_words(sentences[0]))
    return len(prompt_words & first) / len(prompt_words)


def _is_imperative(sentence: str) -> bool:
    words = normalise(sentence).split()
    while words and words[0] in _IMPERATIVE_LEADS:
        words = words[1:]
    return bool(words) and words[0] in IMPERATIVE_VERBS


def actionability(text: str) -> float:
    """How directly the text can be acted on, in [0, 1]: the mean of four feature scores.

    - steps:      min(1, items / 3) for two or more list items (bullets at line starts, or "1. ... 2. ..." markers
                  numbered in sequence, on their own lines or inline); 0 for fewer: one item is not a procedure.
    - imperative: min(1, 2 × share of sentences opening with an IMPERATIVE_VERBS verb, optionally after a lead such
                  as "then"/"never"); half the sentences being instructions already reads as a how-to.
    - code:       1 if there is inline code or a command (`backticks`, a "$ " prompt, a --flag, a Ctrl+/Cmd+ key
                  combination), else 0.
    - numbers:    min(1, distinct numbers / 2) over concrete numbers ("25 minutes", "200°C", "20%", "3-6"), list
                  markers excluded; two figures make an answer specific, and repeating one adds nothing.
    A plain mean keeps each feature's contribution readable; no single feature is necessary, since a good answer
    about writing has no code and a good answer about git may have no numbers.
    """
    sentences = split_sentences(text)
    if not sentences:
        return 0.0
    items = len(list_markers(text))
    steps = min(1.0, items / 3) if items >= 2 else 0.0
    imperative = min(1.0, 2 * sum(map(_is_imperative, sentences)) / len(sentences))
    code = 1.0 if _CODE_RE.search(text) else 0.0
    numbers = min(1.0, len(set(_NUMBER_RE.findall(strip_list_markers(text)))) / 2)
    return (steps + imperative + code + numbers) / 4


def _stem(word: str) -> str:
    # Plural "s" only (cards → card, kits → kit); "ss" words (press, glass) keep theirs.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _identifiers(point: str) -> set[str]:
    """Words of a key point written as code or in capitals (`-rf`, SUMIFS, XLOOKUP): these must match exactly."""
    code = " ".join(re.findall(r"`([^`]*)`", point)) + " " + " ".join(re.findall(r"\b[A-Z][A-Z0-9_]+\b", point))
    return set(normalise(code).split())


def key_point_recall(text: str, key_points: list[str] | tuple[str, ...]) -> float:
    """Share of key points the text covers, in [0, 1]; 1.0 when there are no key points (nothing can be missing).

    Lenient matching, so a paraphrase that keeps the substance still counts. Text and key point are lower-cased with
    punctuation, backticks and possessive 's ignored. A key point is covered if its whole normalised phrase occurs in
    the text, or if every one of its content words (STOPWORDS removed) occurs somewhere in the text (order and
    adjacency are not required), where a word also matches a text word that
      - differs only by a plural "s" ("kits" ~ "kit"), or
      - shares its first 5 characters, both words being at least 5 long ("installing" ~ "install",
        "minutes" ~ "minute").
    Exception: words the key point writes as code (in backticks) or in capitals (SUMIFS, XLOOKUP) must match exactly,
    because identifiers one character apart (SUMIF/SUMIFS, -r/-rf) are different things.
    """
    if not key_points:
        return 1.0
    norm = f" {normalise(text)} "
    exact = set(norm.split())
    stems = {_stem(w) for w in exact}
    prefixes = {w[:5] for w in exact if len(w) >= 5}

    def covered(word: str, identifiers: set[str]) -> bool:
        if word in identifiers:
            return word in exact
        return word in exact or _stem(word) in stems or (len(word) >= 5 and word[:5] in prefixes)

    hits = 0
    for point in key_points:
        phrase, words, identifiers = normalise(point), _content_words(point), _identifiers(point)
        if (phrase and f" {phrase} " in norm) or (words and all(covered(w, identifiers) for w in words)):
            hits += 1
    return hits / len(key_points)


@dataclass(frozen=True)
class AnswerScores:
    """All metrics for one answer; `key_point_recall` is None when no key points were given.

    `repeated_ngram_share` (in [0, 1]) and `loops` are `align.data.repetition`'s. `truncated` is whether a generated
    answer ran to the generation's `max_new_tokens` without ending; None when the text was not generated here (data
    answers), since the text alone cannot tell.
    """

    words: int
    tokens: int
    filler_rate: float
    restatement: float
    actionability: float
    key_point_recall: float | None
    repeated_ngram_share: float = 0.0
    loops: bool = False
    truncated: bool | None = None


def score_answer(prompt: str, answer: str, key_points=None, tokenizer=None) -> AnswerScores:
    """Every metric of `answer` to `prompt` (key-point recall only when `key_points` is given and non-empty;
    `truncated` is left None: generation sets it)."""
    return AnswerScores(
        words=count_words(answer),
        tokens=count_tokens(answer, tokenizer),
        filler_rate=filler_rate(answer),
        restatement=restates_question(prompt, answer),
        actionability=actionability(answer),
        key_point_recall=key_point_recall(answer, key_points) if key_points else None,
        repeated_ngram_share=repeated_ngram_share(answer),
        loops=loops(answer),
    )


#: concise_score weights: completeness dominates, then actionability, then conciseness.
W_RECALL, W_ACTION, W_CONCISE = 0.6, 0.25, 0.15
#: Word budget when no reference length is known (the seed references average 54 words, at most 70).
DEFAULT_WORD_BUDGET = 80
#: Filler rate (phrases per 100 words) at which the filler penalty saturates.
FILLER_SATURATION = 10.0


def concise_score(scores: AnswerScores, reference_words: int | None = None) -> float:
    """One scalar in [0, 1] that ranks answers the way this project wants: complete, then actionable, then concise.

        score       = 0.6 · R + 0.25 · A + 0.15 · C
        R           = key_point_recall
        A           = actionability
        C           = 1 − (filler + restatement + length) / 3, each penalty in [0, 1]:
          filler      = min(1, filler_rate / 10)
          restatement = restatement
          length      = min(1, max(0, words / budget − 1)),  budget = reference_words or 80

    Why these weights: a missing key point (R drops by ≥ 1/4 → −0.15 or more) must cost more than any gain in
    actionability or brevity a shorter, incomplete answer can make, and an answer that is as long as it needs to be
    is not penalised at all (length counts only beyond the budget; twice the budget is the full penalty). When no key
    points are known (R is None), completeness cannot be judged: the score is (0.25 · A + 0.15 · C) / 0.4, so it stays
    in [0, 1] and still ranks answers to the same prompt.

    A looping answer (`loops`) scores 0.0, like an empty one: it is degenerate whatever it covers (a loop can repeat
    every key point), and only the floor guarantees it never outranks an answer that does not loop (a tie is no
    pair for the pair builder).
    """
    budget = reference_words if reference_words and reference_words > 0 else DEFAULT_WORD_BUDGET
    length = min(1.0, max(0.0, scores.words / budget - 1.0))
    filler = min(1.0, scores.filler_rate / FILLER_SATURATION)
    concise = 1.0 - (filler + scores.restatement + length) / 3
    if scores.loops:
        return 0.0
    if scores.words == 0:
        concise = 0.0  # an empty answer is not "perfectly concise"; it is no answer
    rest = W_ACTION * scores.actionability + W_CONCISE * concise
    if scores.key_point_recall is None:
        return rest / (W_ACTION + W_CONCISE)
    return W_RECALL * scores.key_point_recall + rest
