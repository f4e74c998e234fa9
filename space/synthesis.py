"""Synthesis decoder g_s: four x2 upsamplers from y-hat (M channels, stride 16) to the image.

.. code-block:: none

    y_hat (M) -> up[0] -> blocks x depths[0] @ widths[0]   (stride 8)
              -> up[1] -> blocks x depths[1] @ widths[1]   (stride 4)
              -> up[2] -> blocks x depths[2] @ widths[2]   (stride 2)
              -> up[3] -> x_hat (3 channels)                (stride 1)

TCM-small is ``widths=(128,)*3, depths=(2,)*3, block="convtrans", shift=True, head_dims=(32, 16, 8)``
with ResidualBlockUpsample for the first three upsamplers and a sub-pixel conv for the last.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_choice, check_divides, check_float, check_int, check_tuple, check_type
from .errors import ConfigError

# The one list of block and upsampler names: configs are validated against them, the search axes draw from
# them, and asymllic.layers.factory refuses to import unless it has exactly one builder per name.
UPSAMPLERS = ("rbu", "conv_k5", "subpel")  # ResidualBlockUpsample, 5x5 deconv (+IGDN), 3x3 sub-pixel conv
BLOCKS = ("convtrans", "wtb", "res")  # TCM conv-transformer block, window-transformer block, residual block
ATTENTION_BLOCKS = ("convtrans", "wtb")  # blocks with windowed attention: head_dims, window, shift, mlp_ratio apply
_REGISTERED_BLOCKS: dict = {}  # name -> uses attention, for blocks declared at run time (register_block_name)
WINDOWS = (2, 4, 8, 16, 32)
HEAD_DIM_RANGE = (2, 256)
WIDTH_RANGE = (8, 512)
DEPTH_RANGE = (0, 8)
MLP_RANGE = (0.5, 8.0)
NUM_STAGES = 3  # stages with blocks; there are NUM_STAGES + 1 upsamplers


def block_names() -> tuple:
    """Every block a config may name: the declared BLOCKS, then those registered at run time."""
    return BLOCKS + tuple(_REGISTERED_BLOCKS)


def is_attention_block(block: str) -> bool:
    return block in ATTENTION_BLOCKS or _REGISTERED_BLOCKS.get(block, False)


def register_block_name(name: str, attention: bool = False) -> None:
    """Declare a block name so configs naming it validate (``asymllic.layers.factory.register_block`` calls this
    with the builder). Registered blocks are valid in configs but are not choices of the search axes."""
    if not isinstance(name, str) or not name:
        raise ConfigError("block", f"a block name must be a non-empty string, got {name!r}")
    if name in BLOCKS:
        if bool(attention) != (name in ATTENTION_BLOCKS):
            kind = "with" if name in ATTENTION_BLOCKS else "without"
            raise ConfigError("block", f"{name!r} is a declared block {kind} attention; it cannot be redeclared")
        return
    _REGISTERED_BLOCKS[name] = bool(attention)


def attention_width(block: str, width: int) -> int:
    """Channels the attention of one block sees: TCM blocks split the width in conv and transformer halves."""
    return width // 2 if block == "convtrans" else width


@dataclass(frozen=True)
class SynthesisConfig:
    widths: tuple = (128, 128, 128)  # channels at stride 8, 4, 2
    depths: tuple = (2, 2, 2)  # blocks per stage (0: upsampler only)
    block: str = "convtrans"  # one of block_names()
    upsamplers: tuple = ("rbu", "rbu", "rbu", "subpel")  # one of UPSAMPLERS per x2 step
    shift: bool = True  # alternate plain (W) and shifted (SW) windows
    head_dims: tuple = (32, 16, 8)  # attention head width per stage
    window: int = 8  # attention window (tokens per side)
    mlp_ratio: float = 4.0  # transformer MLP hidden width / width

    def __post_init__(self):
        f = "synthesis"
        object.__setattr__(self, "widths", check_tuple(f"{f}.widths", self.widths, NUM_STAGES))
        object.__setattr__(self, "depths", check_tuple(f"{f}.depths", self.depths, NUM_STAGES))
        object.__setattr__(self, "upsamplers", check_tuple(f"{f}.upsamplers", self.upsamplers, NUM_STAGES + 1))
        object.__setattr__(self, "head_dims", check_tuple(f"{f}.head_dims", self.head_dims, NUM_STAGES))
        for i, w in enumerate(self.widths):
            check_int(f"{f}.widths[{i}]", w, *WIDTH_RANGE)
        for i, d in enumerate(self.depths):
            check_int(f"{f}.depths[{i}]", d, *DEPTH_RANGE)
        for i, u in enumerate(self.upsamplers):
            check_choice(f"{f}.upsamplers[{i}]", u, UPSAMPLERS)
        check_choice(f"{f}.block", self.block, block_names())
        check_type(f"{f}.shift", self.shift, bool)
        check_choice(f"{f}.window", self.window, WINDOWS)
        check_float(f"{f}.mlp_ratio", self.mlp_ratio, *MLP_RANGE)
        for i, h in enumerate(self.head_dims):
            check_int(f"{f}.head_dims[{i}]", h, *HEAD_DIM_RANGE)
        if self.block == "convtrans":
            for i, w in enumerate(self.widths):
                if self.depths[i] and w % 2:
                    raise ConfigError(f"{f}.widths[{i}]", f"{w} must be even for 'convtrans' blocks (conv and transformer halves)")
        if is_attention_block(self.block):
            for i, (w, h) in enumerate(zip(self.widths, self.head_dims)):
                if self.depths[i]:
                    check_divides(f"{f}.head_dims[{i}]", h, attention_width(self.block, w), f"the attention width of stage {i}")

    @property
    def uses_attention(self) -> bool:
        return is_attention_block(self.block) and any(self.depths)

    def stage_strides(self) -> tuple:
        """Stride (downsampling factor vs the image) of each block stage."""
        return tuple(2 ** (NUM_STAGES - i) for i in range(NUM_STAGES))
