"""Blocks and upsamplers by name: the one place a config string becomes a module.

The names are declared in ``space`` (``space.BLOCKS``, ``space.UPSAMPLERS``); importing this module fails unless
there is exactly one builder per declared name. ``register_block`` adds a builder and declares its name.
"""
from __future__ import annotations

from typing import Callable, Iterable

import space
import torch.nn as nn
from compressai.layers import GDN, ResidualBlock, ResidualBlockUpsample, conv3x3

from .memo import build
from .transformer import ConvTransBlock, WindowTransformerBlock

# block(width, head_dim, window, shifted, mlp_ratio) -> module keeping (B, width, H, W)
_BLOCKS: dict[str, Callable[..., nn.Module]] = {
    "convtrans": lambda width, head_dim, window, shifted, mlp_ratio: ConvTransBlock(width // 2, head_dim, window, shifted, mlp_ratio),
    "wtb": lambda width, head_dim, window, shifted, mlp_ratio: WindowTransformerBlock(width, head_dim, window, shifted, mlp_ratio),
    "res": lambda width, head_dim, window, shifted, mlp_ratio: ResidualBlock(width, width),
}


def _deconv_k5(cin: int, cout: int, final: bool) -> nn.Module:
    deconv = nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)
    return deconv if final else nn.Sequential(deconv, GDN(cout, inverse=True))


def _subpel(cin: int, cout: int, final: bool) -> nn.Module:
    layers = [conv3x3(cin, cout * 4), nn.PixelShuffle(2)]  # keys "<i>.0.*" as compressai's subpel_conv3x3
    return nn.Sequential(*layers) if final else nn.Sequential(*layers, nn.LeakyReLU(inplace=True))


# upsampler(cin, cout, final) -> module doubling the resolution
_UPSAMPLERS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "rbu": lambda cin, cout, final: ResidualBlockUpsample(cin, cout, 2),
    "conv_k5": _deconv_k5,
    "subpel": _subpel,
}


class BuilderMismatch(RuntimeError):
    """The builders here and the names ``space`` declares disagree."""


def check_builders(kind: str, builders: dict, declared: Iterable[str]) -> None:
    """Raise BuilderMismatch unless ``builders`` has a builder for each declared name and none for another."""
    declared = tuple(declared)
    missing = [n for n in declared if n not in builders]
    undeclared = [n for n in builders if n not in declared]
    problems = ([f"no builder for {missing}"] if missing else []) + \
        ([f"a builder for {undeclared}, which space does not declare"] if undeclared else [])
    if problems:
        raise BuilderMismatch(f"asymllic.layers.factory: the {kind} builders do not match the {kind} names declared "
                              f"in space ({list(declared)}): {'; '.join(problems)}")


check_builders("block", _BLOCKS, space.BLOCKS)
check_builders("upsampler", _UPSAMPLERS, space.UPSAMPLERS)


def register_block(name: str, fn: Callable[..., nn.Module], attention: bool = False) -> None:
    """Add (or replace) the builder of block ``name`` and declare the name to ``space`` so configs may use it.

    ``attention``: the block uses windowed attention, so head_dims, window, shift and mlp_ratio apply to it.
    """
    space.register_block_name(name, attention)
    _BLOCKS[name] = fn


def create_block(name: str, width: int, head_dim: int = 32, window: int = 8, shifted: bool = False,
                 mlp_ratio: float = 4.0) -> nn.Module:
    if name not in _BLOCKS:
        raise KeyError(f"unknown block {name!r}; known: {sorted(_BLOCKS)}")
    return build(_BLOCKS[name], width, head_dim, window, shifted, mlp_ratio)


def create_upsampler(name: str, cin: int, cout: int, final: bool = False) -> nn.Module:
    if name not in _UPSAMPLERS:
        raise KeyError(f"unknown upsampler {name!r}; known: {sorted(_UPSAMPLERS)}")
    return build(_UPSAMPLERS[name], cin, cout, final)


def create_stage(name: str, depth: int, width: int, head_dim: int, window: int, shift: bool,
                 mlp_ratio: float = 4.0) -> list[nn.Module]:
    """``depth`` blocks; with ``shift`` every second one uses shifted windows (TCM's W/SW pairs)."""
    return [create_block(name, width, head_dim, window, shift and i % 2 == 1, mlp_ratio) for i in range(depth)]
