from .inherit import INHERIT, inherit
from .loop import TrainingDiverged
from .schedules import SCHEDULES, Schedule, get_schedule
from .stages import (CODEC_FILE, StageRun, combine, default_teacher, train_stage1, train_stage2, train_stage_at,
                     train_teacher, train_teacher_at)

__all__ = ["CODEC_FILE", "INHERIT", "SCHEDULES", "Schedule", "StageRun", "TrainingDiverged", "combine", "default_teacher", "get_schedule",
           "inherit", "train_stage1", "train_stage2", "train_teacher",
           "train_stage_at", "train_teacher_at"]
