"""A whole codec: the frozen TCM encoder side (width N) plus a synthesis decoder and a hyperprior path."""
from __future__ import annotations

from dataclasses import dataclass, field

from ._checks import check_int, check_type
from .errors import ConfigError
from .hyperprior import HyperpriorConfig
from .synthesis import NUM_STAGES, SynthesisConfig

ENCODER_WIDTHS = (32, 64, 96, 128, 160, 192, 256)  # N; TCM small/middle/large = 64/96/128


@dataclass(frozen=True)
class CodecConfig:
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    hyperprior: HyperpriorConfig = field(default_factory=HyperpriorConfig)
    encoder_width: int = 64  # N of the TCM encoder (g_a, h_a)

    def __post_init__(self):
        check_type("codec.synthesis", self.synthesis, SynthesisConfig)
        check_type("codec.hyperprior", self.hyperprior, HyperpriorConfig)
        check_int("codec.encoder_width", self.encoder_width, 16, 512)
        if self.encoder_width not in ENCODER_WIDTHS:
            raise ConfigError("codec.encoder_width", f"{self.encoder_width} is not allowed; choose one of {list(ENCODER_WIDTHS)}")

    def pad_multiple(self) -> int:
        """Images are padded to a multiple of this so that every window tiles its feature map."""
        s, h = self.synthesis, self.hyperprior
        needs = [64, 2 * 64]  # z is at stride 64; the encoder's own windows (8 at stride 16, 4 at stride 32)
        if s.uses_attention:
            needs.append(max(stride * s.window for stride, d in zip(s.stage_strides(), s.depths) if d))
        if h.attn_dim:
            needs.append(16 * h.attn_window)
        if h.hs_depth and h.hs_block != "res":
            needs.append(32 * h.hs_window)
        return max(needs)

    def check_size(self, width: int, height: int) -> None:
        """Refuse a size at which a window is larger than the feature map it tiles."""
        check_int("size.width", width, 1, 1 << 16)
        check_int("size.height", height, 1, 1 << 16)
        s, h = self.synthesis, self.hyperprior
        maps = []
        if s.uses_attention:
            maps += [(f"synthesis.window (stage {i})", s.window, stride) for i, (stride, d) in enumerate(zip(s.stage_strides(), s.depths)) if d]
        if h.attn_dim:
            maps.append(("hyperprior.attn_window", h.attn_window, 16))
        if h.hs_depth and h.hs_block != "res":
            maps.append(("hyperprior.hs_window", h.hs_window, 32))
        for name, window, stride in maps:
            fw, fh = -(-width // stride), -(-height // stride)
            if window > min(fw, fh):
                raise ConfigError(name, f"window {window} is larger than the {fw}x{fh} feature map at stride {stride} of a {width}x{height} image")


__all__ = ["CodecConfig", "ENCODER_WIDTHS", "NUM_STAGES"]
