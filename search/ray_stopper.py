"""A Ray Tune stopper that ends the experiment when a trial reports a machine fault (a full disk, an unwritable
folder, a poisoned CUDA context): every later trial on that machine would fail the same way."""
from __future__ import annotations

from ray.tune import Stopper

from .trial import MACHINE_ERROR


class MachineStop(Stopper):
    def __init__(self):
        self.error: str | None = None

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get(MACHINE_ERROR):
            self.error = self.error or result[MACHINE_ERROR]
            return True
        return False

    def stop_all(self) -> bool:
        return self.error is not None
