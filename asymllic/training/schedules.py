"""Training schedules (smoke, cpu, paper): one code path, only sizes and step counts change."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import AsymllicError


@dataclass(frozen=True)
class Schedule:
    name: str
    crop: int  # training crop side
    batch: int
    teacher_steps: int
    stage1_steps: int
    stage2_steps: int
    lr: float = 1e-4
    lr_drop: float = 5 / 6  # fraction of the steps after which lr becomes lr_after (paper: 0.5M of 0.6M)
    lr_after: float = 1e-5
    checkpoint_every: int = 100
    cache_crops: int = 64  # crops whose latents the stage caches hold
    eval_max_side: int = 0  # 0: evaluate full images; else centre-crop larger images to this side
    eval_photos: int = 0  # 0: every held-out photo of the split; else the first n
    search_steps: int = 200  # fine-tuning steps of one search candidate

    def eval_options(self) -> dict:
        """How this schedule evaluates on held-out photos: ``evaluate(..., **schedule.eval_options())``."""
        return {"max_side": self.eval_max_side, "photos": self.eval_photos}

    def steps(self, stage: str) -> int:
        return {"teacher": self.teacher_steps, "stage1": self.stage1_steps, "stage2": self.stage2_steps}[stage]


SCHEDULES = {
    "smoke": Schedule("smoke", crop=128, batch=1, teacher_steps=3, stage1_steps=3, stage2_steps=3,
                         checkpoint_every=2, cache_crops=4, eval_max_side=64, eval_photos=1, search_steps=2),
    "cpu": Schedule("cpu", crop=128, batch=4, teacher_steps=600, stage1_steps=1000, stage2_steps=500,
                       checkpoint_every=100, cache_crops=256, eval_max_side=512, search_steps=150),
    "paper": Schedule("paper", crop=256, batch=8, teacher_steps=600_000, stage1_steps=600_000,
                         stage2_steps=600_000, checkpoint_every=5000, cache_crops=100_000, search_steps=50_000),
}


def get_schedule(name: str, **overrides) -> Schedule:
    if name not in SCHEDULES:
        raise AsymllicError(f"unknown training schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(SCHEDULES[name], **overrides)
