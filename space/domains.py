"""The search domains: one list of axes drives Optuna trials and Ray Tune param spaces alike.

An axis is a named, flat parameter with a domain and, when it only matters for some configs, a
condition on the parameters sampled before it. ``config_from_params`` turns a flat dict of axis
values into a validated config, ignoring axes whose condition does not hold.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

from .config import CodecConfig
from .hyperprior import HyperpriorConfig
from .synthesis import NUM_STAGES, SynthesisConfig, attention_width

Params = dict


@dataclass(frozen=True)
class Axis:
    name: str
    choices: tuple = ()  # categorical domain
    low: Optional[int] = None  # integer domain [low, high]
    high: Optional[int] = None
    when: Optional[Callable[[Params], bool]] = None  # applies only if this holds for earlier params
    doc: str = ""

    @property
    def is_int(self) -> bool:
        return self.low is not None

    def applies(self, params: Params) -> bool:
        return self.when is None or bool(self.when(params))

    def domain(self) -> str:
        return f"int [{self.low}, {self.high}]" if self.is_int else "{" + ", ".join(map(repr, self.choices)) + "}"


def _attn(p: Params) -> bool:
    return p.get("g_block") in ("convtrans", "wtb") and any(p.get(f"g_depth_{i}", 0) for i in range(NUM_STAGES))


SYNTHESIS_AXES = (
    Axis("g_upsampler", ("rbu", "conv_k5", "subpel"), doc="upsampler of the first three x2 steps"),
    Axis("g_final_upsampler", ("rbu", "subpel", "conv_k5"), doc="upsampler of the last x2 step (to RGB)"),
    Axis("g_block", ("wtb", "convtrans", "res"), doc="block type after each upsampler"),
    *(Axis(f"g_depth_{i}", low=0, high=3, doc=f"blocks at stage {i}") for i in range(NUM_STAGES)),
    *(Axis(f"g_width_{i}", (32, 48, 64, 96, 128, 160, 192, 256), doc=f"channels at stage {i} (stride {2 ** (NUM_STAGES - i)})")
      for i in range(NUM_STAGES)),
    Axis("g_shift", (False, True), when=_attn, doc="alternate plain and shifted windows"),
    *(Axis(f"g_heads_{i}", (1, 2, 4, 8), when=lambda p, i=i: _attn(p) and p.get(f"g_depth_{i}", 0) > 0,
           doc=f"attention heads at stage {i} (head dim = attention width / heads)") for i in range(NUM_STAGES)),
    Axis("g_window", (4, 8, 16), when=_attn, doc="attention window"),
    Axis("g_mlp_ratio", (1.0, 2.0, 4.0), when=_attn, doc="transformer MLP ratio"),
)

HYPERPRIOR_AXES = (
    Axis("h_num_slices", (1, 2, 4, 5, 8, 10), doc="slices of the channel-wise context model"),
    Axis("h_max_support", (-1, 1, 2, 4), when=lambda p: p["h_num_slices"] > 1, doc="previous slices seen (-1: all)"),
    Axis("h_attn_dim", (0, 32, 64, 96, 128), doc="SWAtten inner width (0: none)"),
    Axis("h_attn_heads", (1, 2, 4, 8), when=lambda p: p["h_attn_dim"] > 0, doc="SWAtten heads"),
    Axis("h_attn_depth", low=1, high=2, when=lambda p: p["h_attn_dim"] > 0, doc="SWAtten transformer blocks"),
    Axis("h_attn_res_units", low=0, high=3, when=lambda p: p["h_attn_dim"] > 0, doc="SWAtten residual units"),
    Axis("h_shift", (False, True), doc="shifted windows in SWAtten and h_s"),
    Axis("h_slice_depth", low=1, high=3, doc="hidden layers of the mean/scale/LRP chains"),
    *(Axis(f"h_slice_width_{i}", (64, 96, 128, 160, 224), when=lambda p, i=i: p["h_slice_depth"] > i,
           doc=f"width of hidden layer {i}") for i in range(3)),
    Axis("h_lrp", (True, False), doc="latent residual prediction"),
    Axis("h_hs_width", (64, 96, 128, 192), doc="hyper-decoder width"),
    Axis("h_hs_depth", low=0, high=2, doc="hyper-decoder blocks"),
    Axis("h_hs_block", ("convtrans", "wtb", "res"), when=lambda p: p["h_hs_depth"] > 0, doc="hyper-decoder block type"),
    Axis("h_hs_heads", (1, 2, 4), when=lambda p: p["h_hs_depth"] > 0 and p["h_hs_block"] != "res", doc="hyper-decoder heads"),
)

PARTS = {"synthesis": SYNTHESIS_AXES, "hyperprior": HYPERPRIOR_AXES, "joint": SYNTHESIS_AXES + HYPERPRIOR_AXES}


def axes(part: str) -> tuple:
    if part not in PARTS:
        from .errors import ConfigError

        raise ConfigError("part", f"unknown part {part!r}; choose one of {sorted(PARTS)}")
    return PARTS[part]


def _synthesis_from_params(p: Params) -> SynthesisConfig:
    widths = tuple(p[f"g_width_{i}"] for i in range(NUM_STAGES))
    depths = tuple(p[f"g_depth_{i}"] for i in range(NUM_STAGES))
    block = p["g_block"]
    attn = _attn(p)
    head_dims = tuple(
        attention_width(block, w) // p[f"g_heads_{i}"] if attn and depths[i] else SynthesisConfig.head_dims[i]
        for i, w in enumerate(widths))
    base = SynthesisConfig()
    return SynthesisConfig(
        widths=widths, depths=depths, block=block,
        upsamplers=(p["g_upsampler"],) * NUM_STAGES + (p["g_final_upsampler"],),
        shift=p["g_shift"] if attn else False, head_dims=head_dims,
        window=p["g_window"] if attn else base.window, mlp_ratio=p["g_mlp_ratio"] if attn else base.mlp_ratio)


def _hyperprior_from_params(p: Params) -> HyperpriorConfig:
    base = HyperpriorConfig()
    attn_dim = p["h_attn_dim"]
    hs_attn = p["h_hs_depth"] > 0 and p["h_hs_block"] != "res"
    hs_block = p["h_hs_block"] if p["h_hs_depth"] > 0 else base.hs_block
    return HyperpriorConfig(
        num_slices=p["h_num_slices"], max_support=p["h_max_support"] if p["h_num_slices"] > 1 else -1,
        attn_dim=attn_dim, attn_head_dim=attn_dim // p["h_attn_heads"] if attn_dim else base.attn_head_dim,
        attn_depth=p["h_attn_depth"] if attn_dim else base.attn_depth,
        attn_res_units=p["h_attn_res_units"] if attn_dim else base.attn_res_units,
        shift=p["h_shift"], slice_hidden=tuple(p[f"h_slice_width_{i}"] for i in range(p["h_slice_depth"])),
        lrp=p["h_lrp"], hs_width=p["h_hs_width"], hs_depth=p["h_hs_depth"], hs_block=hs_block,
        hs_head_dim=attention_width(hs_block, p["h_hs_width"]) // p["h_hs_heads"] if hs_attn else base.hs_head_dim)


def config_from_params(params: Params, part: str, base: CodecConfig | None = None) -> CodecConfig:
    """Validated codec config from flat axis values; the part not searched comes from ``base``."""
    from .presets import teacher_config

    base = base or teacher_config()
    applied = applicable(params, part)
    if part in ("synthesis", "joint"):
        base = replace(base, synthesis=_synthesis_from_params(applied))
    if part in ("hyperprior", "joint"):
        base = replace(base, hyperprior=_hyperprior_from_params(applied))
    return base


def applicable(params: Params, part: str) -> Params:
    """The subset of ``params`` whose axes apply (in order), as an Optuna trial would have sampled."""
    out: Params = {}
    for ax in axes(part):
        if ax.applies(out):
            if ax.name not in params:
                from .errors import ConfigError

                raise ConfigError(ax.name, "missing from the sampled parameters")
            out[ax.name] = params[ax.name]
    return out


def params_from_config(cfg: CodecConfig, part: str) -> Params:
    """The axis values that ``config_from_params`` maps back to ``cfg`` (to enqueue presets as trials).

    Raises ConfigError when ``cfg`` lies outside the sampled domains.
    """
    from .errors import ConfigError

    s, h = cfg.synthesis, cfg.hyperprior
    p: Params = {}
    if part in ("synthesis", "joint"):
        p.update(g_upsampler=s.upsamplers[0], g_final_upsampler=s.upsamplers[-1], g_block=s.block,
                 g_shift=s.shift, g_window=s.window, g_mlp_ratio=s.mlp_ratio)
        for i in range(NUM_STAGES):
            p[f"g_depth_{i}"], p[f"g_width_{i}"] = s.depths[i], s.widths[i]
            p[f"g_heads_{i}"] = attention_width(s.block, s.widths[i]) // s.head_dims[i]
    if part in ("hyperprior", "joint"):
        p.update(h_num_slices=h.num_slices, h_max_support=h.max_support, h_attn_dim=h.attn_dim,
                 h_attn_heads=h.attn_dim // h.attn_head_dim if h.attn_dim else 1, h_attn_depth=h.attn_depth,
                 h_attn_res_units=h.attn_res_units, h_shift=h.shift, h_slice_depth=len(h.slice_hidden),
                 h_lrp=h.lrp, h_hs_width=h.hs_width, h_hs_depth=h.hs_depth, h_hs_block=h.hs_block,
                 h_hs_heads=attention_width(h.hs_block, h.hs_width) // h.hs_head_dim)
        for i, w in enumerate(h.slice_hidden):
            p[f"h_slice_width_{i}"] = w
    applied = applicable(p, part)
    for ax in axes(part):
        if ax.name in applied and not ax.is_int and applied[ax.name] not in ax.choices:
            raise ConfigError(ax.name, f"{applied[ax.name]!r} is outside the sampled domain {list(ax.choices)}")
        if ax.name in applied and ax.is_int and not ax.low <= applied[ax.name] <= ax.high:
            raise ConfigError(ax.name, f"{applied[ax.name]} is outside the sampled range [{ax.low}, {ax.high}]")
    rebuilt = config_from_params(applied, part, cfg)
    if rebuilt != cfg:
        raise ConfigError(part, "this config cannot be expressed by the sampled axes")
    return applied
