"""Hyperprior path: hyper-decoder h_s (one for means, one for scales) and the channel-wise context model f_c.

.. code-block:: none

    z_hat (192) -> h_mean_s / h_scale_s: RBU(192, hs_width) | blocks x hs_depth | subpel(hs_width, M)
    for slice i of num_slices (M / num_slices channels each):
        support = [latent means or scales] + up to max_support previous y-hat slices
        support = SWAtten(support)  (attn_dim wide, attn_depth W/SW blocks, attn_res_units residual units)
        mu, sigma = conv3x3 chain through slice_hidden widths
        y_hat_i += 0.5 * tanh(LRP([support, y_hat_i]))   (if lrp)

TCM-small: 5 slices, max_support 5 (= all, stored as -1), attn_dim 128 (head 16, window 8, 2 blocks, 3 units), shift,
slice_hidden (224, 128), LRP, hs_width 128 with 2 'convtrans' blocks (head 32, window 4).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_choice, check_divides, check_int, check_tuple, check_type
from .errors import ConfigError
from .synthesis import HEAD_DIM_RANGE, WINDOWS, attention_width, block_names, is_attention_block

LATENT_CHANNELS = 320  # M: channels of y, fixed by the frozen encoder
HYPER_CHANNELS = 192  # channels of z, fixed by the frozen h_a
SLICE_CHOICES = tuple(d for d in range(1, LATENT_CHANNELS + 1) if LATENT_CHANNELS % d == 0 and d <= 40)


@dataclass(frozen=True)
class HyperpriorConfig:
    num_slices: int = 5  # divisor of M
    max_support: int = -1  # previous slices fed to a slice network (-1: all; TCM's 5 of 5 slices is all)
    attn_dim: int = 128  # SWAtten inner width (0: no attention)
    attn_head_dim: int = 16
    attn_window: int = 8
    attn_depth: int = 2  # window-transformer blocks in the attention branch
    attn_res_units: int = 3  # residual units per attention branch
    shift: bool = True  # alternate plain and shifted windows (attention and h_s)
    slice_hidden: tuple = (224, 128)  # hidden widths of the mean/scale/LRP conv chains
    lrp: bool = True  # latent residual prediction
    hs_width: int = 128  # hyper-decoder width
    hs_depth: int = 2  # hyper-decoder blocks
    hs_block: str = "convtrans"
    hs_head_dim: int = 32
    hs_window: int = 4

    def __post_init__(self):
        f = "hyperprior"
        check_choice(f"{f}.num_slices", self.num_slices, SLICE_CHOICES)
        check_int(f"{f}.max_support", self.max_support, -1, LATENT_CHANNELS)
        if self.max_support == 0:
            raise ConfigError(f"{f}.max_support", "0 is not allowed; use -1 (all previous slices) or a count >= 1")
        if self.max_support >= self.num_slices - 1:  # one canonical form: "all" is -1
            object.__setattr__(self, "max_support", -1)
        check_int(f"{f}.attn_dim", self.attn_dim, 0, 512)
        check_int(f"{f}.attn_head_dim", self.attn_head_dim, *HEAD_DIM_RANGE)
        check_choice(f"{f}.attn_window", self.attn_window, WINDOWS)
        check_int(f"{f}.attn_depth", self.attn_depth, 1, 4)
        check_int(f"{f}.attn_res_units", self.attn_res_units, 0, 4)
        if self.attn_dim:
            check_divides(f"{f}.attn_head_dim", self.attn_head_dim, self.attn_dim, "attn_dim")
            if self.attn_res_units and self.attn_dim % 2:
                raise ConfigError(f"{f}.attn_dim", f"{self.attn_dim} must be even (residual units halve it)")
        check_type(f"{f}.shift", self.shift, bool)
        hidden = check_tuple(f"{f}.slice_hidden", self.slice_hidden, len(self.slice_hidden) if isinstance(self.slice_hidden, (list, tuple)) else 0)
        if not 1 <= len(hidden) <= 4:
            raise ConfigError(f"{f}.slice_hidden", f"expected 1 to 4 hidden widths, got {len(hidden)}")
        for i, w in enumerate(hidden):
            check_int(f"{f}.slice_hidden[{i}]", w, 8, 512)
        object.__setattr__(self, "slice_hidden", hidden)
        check_type(f"{f}.lrp", self.lrp, bool)
        check_int(f"{f}.hs_width", self.hs_width, 8, 512)
        check_int(f"{f}.hs_depth", self.hs_depth, 0, 4)
        check_choice(f"{f}.hs_block", self.hs_block, block_names())
        check_int(f"{f}.hs_head_dim", self.hs_head_dim, *HEAD_DIM_RANGE)
        check_choice(f"{f}.hs_window", self.hs_window, WINDOWS)
        if self.hs_uses_attention:
            if self.hs_block == "convtrans" and self.hs_width % 2:
                raise ConfigError(f"{f}.hs_width", f"{self.hs_width} must be even for 'convtrans' blocks")
            check_divides(f"{f}.hs_head_dim", self.hs_head_dim, attention_width(self.hs_block, self.hs_width), "the hyper-decoder attention width")

    @property
    def hs_uses_attention(self) -> bool:
        return self.hs_depth > 0 and is_attention_block(self.hs_block)

    @property
    def slice_channels(self) -> int:
        return LATENT_CHANNELS // self.num_slices

    def support_slices(self, index: int) -> int:
        """How many previous y-hat slices slice ``index`` sees."""
        return index if self.max_support < 0 else min(index, self.max_support)
