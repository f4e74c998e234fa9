"""Named configs: the teacher, the paper's decoder and every row of the paper's Tables II and III.

The paper does not publish the widths of its variants; the values below were fitted with this
project's own counter (``python -m bench.fit_presets``) so that each preset reproduces its table row
within 3 % in params and MACs at 768x512 in the paper's (thop) convention.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

from .config import CodecConfig
from .errors import ConfigError
from .hyperprior import HyperpriorConfig
from .synthesis import SynthesisConfig


@dataclass(frozen=True)
class Preset:
    name: str
    build: Callable[[], CodecConfig]
    doc: str
    # (table key, row, component) in shared/anchors/asymllic_paper_tables.json that this preset reproduces
    anchor: Optional[tuple] = None


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, doc: str, anchor: Optional[tuple] = None):
    def wrap(fn: Callable[[], CodecConfig]):
        PRESETS[name] = Preset(name, fn, doc, anchor)
        return fn

    return wrap


def teacher_config(n: int = 64) -> CodecConfig:
    """TCM at encoder width N: its decoder side is the space's default scaled to 2N channels."""
    synthesis = SynthesisConfig(widths=(2 * n,) * 3)
    hyperprior = HyperpriorConfig(hs_width=2 * n)
    return CodecConfig(synthesis=synthesis, hyperprior=hyperprior, encoder_width=n)


for _n, _size in ((64, "small"), (96, "middle"), (128, "large")):
    register_preset(f"tcm-{_size}", f"TCM-{_size} (N={_n}), the symmetric teacher",
                    ("table_I_systems", "TCM", "total") if _n == 64 else None)(lambda n=_n: teacher_config(n))
PRESETS["teacher"] = replace(PRESETS["tcm-small"], name="teacher", doc="the teacher: TCM-small (N=64), exactly")

# --- Table II: synthesis decoders (hyperprior path of the teacher) ---------------------------------
G_S = {
    "conv_k5": SynthesisConfig(widths=(128, 96, 64), depths=(0, 0, 0), block="res",
                               upsamplers=("conv_k5",) * 4, shift=False, head_dims=(32, 16, 8)),
    "rbu": SynthesisConfig(widths=(128, 96, 96), depths=(0, 0, 0), block="res",
                           upsamplers=("rbu",) * 4, shift=False, head_dims=(32, 16, 8)),
    "tcm_pruned": SynthesisConfig(widths=(96, 112, 80), depths=(0, 0, 2), block="convtrans",
                                  upsamplers=("rbu", "rbu", "rbu", "subpel"), shift=True, head_dims=(8, 8, 8)),
    "ours": SynthesisConfig(widths=(128, 96, 64), depths=(1, 1, 1), block="wtb",
                            upsamplers=("rbu",) * 4, shift=False, head_dims=(32, 48, 16), mlp_ratio=2.0),
}
G_S_ROWS = {"conv_k5": "Conv_k5", "rbu": "RBU", "tcm_pruned": "TCM_pruned", "ours": "Ours"}

# --- Table III: hyperprior paths (synthesis decoder of the teacher) ---------------------------------
HP = {
    "slices_1": HyperpriorConfig(num_slices=1, max_support=-1, attn_dim=32, attn_depth=1, shift=False,
                                 attn_res_units=1, slice_hidden=(160,), hs_width=256, hs_depth=2, hs_head_dim=16),
    "slices_2": HyperpriorConfig(num_slices=2, max_support=-1, attn_dim=192, attn_depth=1, shift=False,
                                 attn_res_units=1, slice_hidden=(224, 128), hs_width=128, hs_depth=1, hs_head_dim=16),
    "slices_5_tcm_pruned": HyperpriorConfig(num_slices=5, attn_dim=64, attn_depth=2, shift=True, attn_res_units=1,
                                            slice_hidden=(128, 64), hs_width=96, hs_depth=1, hs_head_dim=8),
    "slices_5_ours": HyperpriorConfig(num_slices=5, attn_dim=32, attn_depth=1, shift=False, attn_res_units=1,
                                      slice_hidden=(128,), hs_width=96, hs_depth=1, hs_head_dim=24),
}
HP_ROWS = {"slices_1": "slices_1", "slices_2": "slices_2", "slices_5_tcm_pruned": "slices_5_TCM_pruned",
           "slices_5_ours": "slices_5_Ours"}

for _k, _cfg in G_S.items():
    register_preset(f"g_s/{_k}", f"Table II '{G_S_ROWS[_k]}' synthesis decoder on the teacher",
                    ("table_II_synthesis_decoder", G_S_ROWS[_k], "g_s"))(
        lambda c=_cfg: replace(teacher_config(64), synthesis=c))
for _k, _cfg in HP.items():
    register_preset(f"hp/{_k}", f"Table III '{HP_ROWS[_k]}' hyperprior path on the teacher",
                    ("table_III_hyperprior_path", HP_ROWS[_k], "hyperprior"))(
        lambda c=_cfg: replace(teacher_config(64), hyperprior=c))


@register_preset("paper", "AsymLLIC: Table II 'Ours' synthesis + Table III 'slices 5, Ours' hyperprior path",
                 ("table_I_systems", "AsymLLIC", "total"))
def paper_config() -> CodecConfig:
    return CodecConfig(synthesis=G_S["ours"], hyperprior=HP["slices_5_ours"], encoder_width=64)


def get_preset(name: str) -> CodecConfig:
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; known presets are {sorted(PRESETS)}")
    return PRESETS[name].build()


def list_presets() -> list[str]:
    return sorted(PRESETS)
