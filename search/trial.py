"""One trial pipeline for every backend: count a candidate, refuse it over budget, train and evaluate it,
and return a typed record. The Optuna objective and the Ray trainable only adapt this record to their
library (user attributes and a pruned/failed state; a reported result)."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import space

from . import objectives
from .candidate import complexity, train_and_evaluate
from .spec import SearchSpec

COMPLETE, INFEASIBLE, FAILED, STOPPED = "complete", "infeasible", "failed", "stopped"


MACHINE_ERROR = "machine_error"  # the reported result key of a trial whose machine cannot take trials (Ray)


class MachineError(RuntimeError):
    """The machine's fault, not the candidate's (a full disk, an unwritable folder): every next trial would
    fail the same way, so the search stops with its study intact."""


@dataclass
class TrialRecord:
    status: str  # complete, infeasible (counted, never trained), failed (with its reason) or stopped (at a rung
    #              below the top one by multi-fidelity search; its metrics are that rung's)
    config: dict
    config_id: str
    figures: dict  # params and MACs, both conventions, before any training
    metrics: dict = field(default_factory=dict)  # quality, rate, timings, checkpoint
    reason: str = ""
    host: str = ""  # the machine it ran on (its files are under the study's shared root)

    def attrs(self) -> dict:
        """Everything a study stores about the trial (Optuna user attributes, Ray result keys)."""
        out = {"status": self.status, "config_id": self.config_id, "config": self.config, **self.figures, **self.metrics}
        if self.host:
            out["host"] = self.host
        if self.status == INFEASIBLE:
            out["infeasible"] = self.reason
        elif self.status == FAILED:
            out["error"] = self.reason
        elif self.status == STOPPED:
            out["stopped"] = self.reason
        return out

    def values(self, part: str, cost: str = "macs") -> list:
        return objectives.values(part, {**self.figures, **self.metrics}, cost)

    def stopped(self, top_steps: int) -> "TrialRecord":
        """This record (scored at a rung below ``top_steps``) as the candidate's last: stopped there."""
        m = self.metrics
        return replace(self, status=STOPPED, reason=f"stopped at rung {m['rung']} ({m['steps']} of {top_steps} steps)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialRecord":
        return cls(**d)


def _with_device_retry(fn: Callable):
    """``fn()``; a device out-of-memory error is retried once after the cached device memory is released (on a shared
    GPU it may be another worker's peak, not this candidate's); a CUDA fault that poisons this process's CUDA context
    is a ``MachineError``: this worker stops instead of failing every later candidate."""
    from asymllic.device import is_device_fault, is_out_of_memory, release_memory

    for attempt in (1, 2):
        try:
            return fn()
        except Exception as e:
            if is_device_fault(e):
                raise MachineError(f"device fault, this worker stops (its CUDA context is unusable): {e}"[:1000]) from e
            if not (is_out_of_memory(e) and attempt == 1):
                raise
        # outside the handler: the traceback, and with it the failed attempt's frames and tensors, is gone
        release_memory()


def run_trial(cfg: space.CodecConfig, spec: SearchSpec, trial_dir: Path, evaluate: Callable = train_and_evaluate,
              on_rung: Callable | None = None) -> TrialRecord:
    """Count ``cfg``; over the MAC budget it is infeasible and never trained; else train and evaluate it in
    ``trial_dir``, rung by rung with multi-fidelity (``spec.min_steps``): after each rung below the top one
    ``on_rung(rung, record)`` says whether it goes on (resuming from its checkpoint) or stops there. A crash of
    the candidate is a failed record; a machine error (full disk, read-only folder) is raised as ``MachineError``."""
    from asymllic.files import describe, is_resource_error

    from .nodes import host

    record = TrialRecord(COMPLETE, space.to_dict(cfg), space.config_id(cfg), complexity(cfg, spec.size), host=host())
    gmacs = record.figures["decoder_gmacs"]
    if spec.mac_budget is not None and gmacs > spec.mac_budget:
        record.status, record.reason = INFEASIBLE, f"decoder {gmacs:.2f} GMACs > budget {spec.mac_budget:.2f} GMACs"
        return record
    if spec.objective == "latency" or spec.latency_budget is not None:  # measured before any training step
        from asymllic.evaluation.latency import decode_latency

        record.figures.update(decode_latency(cfg, spec.size, spec.latency_device, spec.latency_threads,
                                             spec.latency_repeats))
        ms = record.figures["decoder_ms"]
        if spec.latency_budget is not None and ms > spec.latency_budget:
            record.status, record.reason = INFEASIBLE, f"decoder {ms:.1f} ms > budget {spec.latency_budget} ms " \
                                                       f"({record.figures['latency_target']})"
            return record
    t0 = time.perf_counter()
    steps = spec.rungs()
    for rung, rung_steps in enumerate(steps):
        try:
            metrics = _with_device_retry(lambda: evaluate(cfg, spec.at_rung(rung_steps, steps[-1]), trial_dir))
        except MachineError:
            raise
        except Exception as e:  # noqa: BLE001 - a candidate's crash is its record, not the search's end
            if is_resource_error(e):
                raise MachineError(describe(e, trial_dir)) from e
            record.status, record.reason = FAILED, f"{type(e).__name__}: {e}"[:1000]
            return record
        record.metrics = {**metrics, "wall_seconds": time.perf_counter() - t0, "rung": rung, "steps": rung_steps}
        try:
            values = record.values(spec.part, spec.objective)
        except KeyError as e:
            values = [math.nan]
            record.reason = f"no metric {e} in the evaluation"
        if not all(math.isfinite(v) for v in values):
            record.status = FAILED
            record.reason = record.reason or f"non-finite objective {values}"
            return record
        if rung < len(steps) - 1 and on_rung is not None and not on_rung(rung, record):
            from .candidate import drop_resume_state

            drop_resume_state(trial_dir)
            return record.stopped(steps[-1])
    return record
