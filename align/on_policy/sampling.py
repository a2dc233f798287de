"""Sampling a prompt list across processes: each process answers its share, every process gets all the answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from align.evaluation.generation import GeneratedAnswer, SamplingSettings, sample_answers
from align.on_policy.prompts import PromptRow
from align.progress import progress_bar
from align.runtime import process_state

#: Seeds of different processes are this far apart, so no two processes draw the same random stream.
PROCESS_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class SampledAnswers:
    """Every prompt's sampled answers (in prompt order) and which prompts each process sampled (`shares[rank]`:
    prompt indices), for the report and to prove the shares are disjoint."""

    answers: list[list[GeneratedAnswer]]
    shares: list[list[int]]


def process_share(count: int, rank: int, processes: int) -> list[int]:
    """The prompt indices process `rank` of `processes` samples: every `processes`-th from `rank` (disjoint, and
    together all of `range(count)`)."""
    return list(range(rank, count, processes))


@dataclass(frozen=True)
class SamplingBackend:
    """What samples the answers (`data.generate.backend`): `name` `align` (the decode loop, in batches of
    `batch_size` prompts, None = the memory budget's) or `vllm` (vLLM's engine with `vllm_options`)."""

    name: str = "align"
    batch_size: int | None = None
    vllm_options: dict = field(default_factory=dict)

    def sample(self, model, tokenizer, prompts: list[str], settings: SamplingSettings, progress):
        if self.name == "vllm":
            from align.on_policy.vllm_sampling import sample_with_vllm

            return sample_with_vllm(model, tokenizer, prompts, settings, self.vllm_options, progress)
        return sample_answers(model, tokenizer, prompts, settings, self.batch_size, progress)


def sample_all(
    model,
    tokenizer,
    rows: list[PromptRow],
    settings: SamplingSettings,
    backend: SamplingBackend,
    label: str = "sampling answers",
) -> SampledAnswers:
    """Sample `settings.samples` answers to every prompt with `backend`; under several processes each samples its
    share (seeded apart) and the answers are gathered, so every process returns the same `SampledAnswers`. The main
    process shows its share's progress, labelled `label`."""
    state = process_state()
    share = process_share(len(rows), state.process_index, state.num_processes)
    seeded = replace(settings, seed=settings.seed + PROCESS_SEED_STRIDE * state.process_index)
    with progress_bar(len(share), label) as bar:
        mine = backend.sample(model, tokenizer, [rows[i].prompt for i in share], seeded, bar)
    local = [(index, [asdict(a) for a in answers]) for index, answers in zip(share, mine, strict=True)]
    if state.num_processes > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([(state.process_index, local)])
    else:
        gathered = [(0, local)]
    answers: list[list[GeneratedAnswer] | None] = [None] * len(rows)
    shares: list[list[int]] = [[] for _ in range(state.num_processes)]
    for rank, items in gathered:
        for index, found in items:
            if answers[index] is not None:
                raise RuntimeError(f"prompt {index} was sampled by two processes")
            answers[index] = [GeneratedAnswer(**a) for a in found]
            shares[rank].append(index)
    missing = [index for index, found in enumerate(answers) if found is None]
    if missing:
        raise RuntimeError(f"prompts {missing[:5]} were sampled by no process")
    return SampledAnswers(answers, shares)  # type: ignore[arg-type]
