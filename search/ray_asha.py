"""MO-ASHA as a Ray Tune scheduler: the ranking of ``search.asha`` over the rung results Ray reports."""
from __future__ import annotations

import json
from collections import defaultdict

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from .asha import promotable


class MultiObjectiveASHA(FIFOScheduler):
    """Stops a trial at a rung below ``top_rung`` unless it ranks among the best ``1/eta`` of the results seen at
    that rung (non-dominated sorting, then crowding distance). A reference preset always goes on."""

    def __init__(self, top_rung: int, eta: int):
        super().__init__()
        self.top_rung, self.eta = top_rung, eta
        self.results: dict = defaultdict(dict)  # rung -> {trial id: minimised objectives}

    def on_trial_add(self, tune_controller, trial) -> None:
        """A trial restored by ``Tuner.restore`` brings the rung results it reported before (its last result
        carries them all), so the ledger a restored search ranks against is the one it had."""
        super().on_trial_add(tune_controller, trial)
        for rung, values in json.loads((trial.last_result or {}).get("rung_history", "{}")).items():
            if int(rung) < self.top_rung:
                self.results[int(rung)][trial.trial_id] = values

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        rung = result.get("rung")
        if rung is None or "rung_values" not in result or rung >= self.top_rung:
            return TrialScheduler.CONTINUE
        self.results[rung][trial.trial_id] = json.loads(result["rung_values"])
        if result.get("preset"):
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE if promotable(self.results[rung], trial.trial_id, self.eta) \
            else TrialScheduler.STOP
