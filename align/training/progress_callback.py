"""The trainer's progress bars labelled with the stage (`concise train`, `concise eval`), drawn by `align.progress`:
tqdm on a terminal, plain lines in a log. Replaces transformers' `ProgressCallback`, whose unlabelled tqdm bars write
carriage returns into log files."""

from __future__ import annotations

import sys

from transformers import ProgressCallback, TrainerCallback

from align.progress import Progress, progress_bar


class StageProgressCallback(TrainerCallback):
    """A training bar (optimizer steps) and a held-out evaluation bar (batches), labelled with `stage`; the
    trainer's log rows printed as lines between them, as transformers' own bar does."""

    def __init__(self, stage: str):
        self.stage = stage
        self.training: Progress | None = None
        self.prediction: Progress | None = None
        self.step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training = progress_bar(state.max_steps, f"{self.stage} train", enabled=True)
            # A resumed stage starts at its checkpoint's step.
            self.training.update(state.global_step)
        self.step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.training is not None:
            self.training.update(state.global_step - self.step)
        self.step = state.global_step

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero or eval_dataloader is None or not hasattr(eval_dataloader, "__len__"):
            return
        if self.prediction is None:
            self.prediction = progress_bar(len(eval_dataloader), f"{self.stage} eval", enabled=True)
        self.prediction.update(1)

    def on_evaluate(self, args, state, control, **kwargs):
        self._close_prediction()

    def on_predict(self, args, state, control, **kwargs):
        self._close_prediction()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training is not None and logs:
            shown = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in logs.items() if k != "total_flos"}
            # On stdout, where transformers' own bar writes them, so stderr holds the progress and headers.
            self.training.write(f"{self.stage}: {shown}", sys.stdout)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training is not None:
            self.training.close()
            self.training = None

    def _close_prediction(self) -> None:
        if self.prediction is not None:
            self.prediction.close()
            self.prediction = None


def label_progress(trainer, stage: str) -> None:
    """Swap the trainer's unlabelled progress bars for `StageProgressCallback(stage)`; a trainer whose bars are off
    (`disable_tqdm`, which prints its log rows instead) is left as it is."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(StageProgressCallback(stage))
