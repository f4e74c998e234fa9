"""The decoder design space as plain data (no torch): configs, domains, presets, sampling, serialization."""
from .config import CodecConfig
from .domains import SYNTHESIS_AXES, HYPERPRIOR_AXES, Axis, applicable, axes, config_from_params, params_from_config
from .errors import ConfigError
from .hyperprior import HYPER_CHANNELS, LATENT_CHANNELS, HyperpriorConfig
from .presets import PRESETS, get_preset, list_presets, teacher_config
from .sampling import random_params, sample_config, suggest_params
from .serialize import config_id, dumps, from_dict, load, loads, save, to_dict
from .synthesis import (ATTENTION_BLOCKS, BLOCKS, UPSAMPLERS, SynthesisConfig, block_names, is_attention_block,
                        register_block_name)

__all__ = [
    "ATTENTION_BLOCKS", "BLOCKS", "UPSAMPLERS", "block_names", "is_attention_block", "register_block_name",
    "Axis", "CodecConfig", "applicable", "ConfigError", "HyperpriorConfig", "SynthesisConfig", "PRESETS",
    "HYPER_CHANNELS", "LATENT_CHANNELS", "SYNTHESIS_AXES", "HYPERPRIOR_AXES",
    "axes", "config_from_params", "config_id", "dumps", "from_dict", "get_preset", "list_presets", "load",
    "loads", "params_from_config", "random_params", "sample_config", "save", "suggest_params", "teacher_config",
    "to_dict",
]
