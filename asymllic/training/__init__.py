from .loop import TrainingDiverged
from .schedules import SCHEDULES, Schedule, get_schedule
from .stages import CODEC_FILE, StageRun, combine, train_stage1, train_stage2, train_teacher, warm_start

__all__ = ["CODEC_FILE", "SCHEDULES", "Schedule", "StageRun", "TrainingDiverged", "combine", "get_schedule",
           "train_stage1", "train_stage2", "train_teacher", "warm_start"]
