from .loop import TrainingDiverged
from .presets import PRESETS, TrainPreset, get_train_preset
from .stages import CODEC_FILE, StageRun, combine, train_stage1, train_stage2, train_teacher, warm_start

__all__ = ["CODEC_FILE", "PRESETS", "StageRun", "TrainPreset", "TrainingDiverged", "combine", "get_train_preset",
           "train_stage1", "train_stage2", "train_teacher", "warm_start"]
