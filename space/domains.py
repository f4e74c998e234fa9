"""The search domains: one list of axes drives Optuna trials and Ray Tune param spaces alike.

An axis is a named, flat parameter with a domain, the config field it sets and, when it only matters for some
configs, a condition on the parameters sampled before it. ``config_from_params`` and ``params_from_config`` are
one loop over the axes each way, so a new axis is one ``Axis(...)`` line and the round trip holds by construction.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Optional, Union

from .config import CodecConfig
from .errors import ConfigError
from .synthesis import BLOCKS, NUM_STAGES, UPSAMPLERS, attention_width, is_attention_block

Params = dict
KEEP = "<the config class's default>"  # Axis.default: where the axis does not apply, the field keeps its default


def _same(value: Any, fields: dict) -> Any:
    return value


@dataclasses.dataclass(frozen=True)
class Axis:
    """One searched parameter and the config field it sets.

    ``field`` is a path such as ``"synthesis.widths[0]"``, or a tuple of paths that all take the value (it is read
    back from the first). ``to_field(value, fields)`` turns the axis value into the field's value and
    ``from_field(field_value, fields)`` reads it back, ``fields`` being the section's fields by name (while a config
    is built: the defaults overwritten by the axes before this one). Where the axis does not apply, the field keeps
    the config class's default, or takes ``default``.
    """

    name: str
    choices: tuple = ()  # categorical domain
    low: Optional[int] = None  # integer domain [low, high]
    high: Optional[int] = None
    when: Optional[Callable[[Params], bool]] = None  # applies only if this holds for earlier params
    doc: str = ""
    field: Union[str, tuple] = ""
    to_field: Callable[[Any, dict], Any] = _same
    from_field: Callable[[Any, dict], Any] = _same
    default: Any = KEEP

    def __post_init__(self):
        for section, _, _ in self.targets:
            if section != self.section:
                raise ValueError(f"axis {self.name!r} sets fields of two config sections: {self.field!r}")

    @property
    def is_int(self) -> bool:
        return self.low is not None

    def applies(self, params: Params) -> bool:
        return self.when is None or bool(self.when(params))

    def domain(self) -> str:
        return f"int [{self.low}, {self.high}]" if self.is_int else "{" + ", ".join(map(repr, self.choices)) + "}"

    @property
    def targets(self) -> list:
        """(section, field name, index or None) for each path of ``field``."""
        out = []
        for path in (self.field,) if isinstance(self.field, str) else self.field:
            m = re.fullmatch(r"(\w+)\.(\w+)(?:\[(\d+)\])?", path)
            if not m:
                raise ValueError(f"axis {self.name!r}: field {path!r} is not 'section.name' or 'section.name[i]'")
            out.append((m[1], m[2], None if m[3] is None else int(m[3])))
        return out

    @property
    def section(self) -> str:
        return self.targets[0][0]

    def write(self, fields: dict, params: Params) -> None:
        """Set this axis's field(s) in ``fields`` from ``params`` (the applicable axis values)."""
        if self.name in params:
            value = self.to_field(params[self.name], fields)
        elif self.default is KEEP:
            return
        else:
            value = self.default
        for _, name, index in self.targets:
            if index is None:
                fields[name] = value
            else:
                seq = list(fields[name])
                seq[index] = value
                fields[name] = tuple(seq)

    def read(self, fields: dict) -> Any:
        """This axis's value for a config whose section has ``fields``."""
        _, name, index = self.targets[0]
        return self.from_field(fields[name] if index is None else fields[name][index], fields)

    def check(self, value: Any) -> None:
        if self.is_int and not self.low <= value <= self.high:
            raise ConfigError(self.name, f"{value} is outside the sampled range [{self.low}, {self.high}]")
        if not self.is_int and value not in self.choices:
            raise ConfigError(self.name, f"{value!r} is outside the sampled domain {list(self.choices)}")


def _names(declared: tuple, first: tuple = ()) -> tuple:
    """The declared names with ``first`` ahead: each axis keeps the order it has always been sampled in."""
    assert set(first) <= set(declared), (first, declared)
    return tuple(first) + tuple(n for n in declared if n not in first)


def _heads(attention_of: Callable[[dict], int]) -> dict:
    """Heads <-> head width: either one is the attention width divided by the other."""
    divide = lambda x, fields: attention_of(fields) // x  # noqa: E731
    return {"to_field": divide, "from_field": divide}


def _attn(p: Params) -> bool:
    return is_attention_block(p.get("g_block")) and any(p.get(f"g_depth_{i}", 0) for i in range(NUM_STAGES))


def _hp_attn(p: Params) -> bool:
    return p["h_attn_dim"] > 0


SYNTHESIS_AXES = (
    Axis("g_upsampler", UPSAMPLERS, field=tuple(f"synthesis.upsamplers[{i}]" for i in range(NUM_STAGES)),
         doc="upsampler of the first three x2 steps"),
    Axis("g_final_upsampler", _names(UPSAMPLERS, first=("rbu", "subpel")), field=f"synthesis.upsamplers[{NUM_STAGES}]",
         doc="upsampler of the last x2 step (to RGB)"),
    Axis("g_block", _names(BLOCKS, first=("wtb",)), field="synthesis.block", doc="block type after each upsampler"),
    *(Axis(f"g_depth_{i}", low=0, high=3, field=f"synthesis.depths[{i}]", doc=f"blocks at stage {i}")
      for i in range(NUM_STAGES)),
    *(Axis(f"g_width_{i}", (32, 48, 64, 96, 128, 160, 192, 256), field=f"synthesis.widths[{i}]",
           doc=f"channels at stage {i} (stride {2 ** (NUM_STAGES - i)})") for i in range(NUM_STAGES)),
    Axis("g_shift", (False, True), when=_attn, field="synthesis.shift", default=False,
         doc="alternate plain and shifted windows"),
    *(Axis(f"g_heads_{i}", (1, 2, 4, 8), when=lambda p, i=i: _attn(p) and p.get(f"g_depth_{i}", 0) > 0,
           field=f"synthesis.head_dims[{i}]", **_heads(lambda s, i=i: attention_width(s["block"], s["widths"][i])),
           doc=f"attention heads at stage {i} (head dim = attention width / heads)") for i in range(NUM_STAGES)),
    Axis("g_window", (4, 8, 16), when=_attn, field="synthesis.window", doc="attention window"),
    Axis("g_mlp_ratio", (1.0, 2.0, 4.0), when=_attn, field="synthesis.mlp_ratio", doc="transformer MLP ratio"),
)

HYPERPRIOR_AXES = (
    Axis("h_num_slices", (1, 2, 4, 5, 8, 10), field="hyperprior.num_slices",
         doc="slices of the channel-wise context model"),
    Axis("h_max_support", (-1, 1, 2, 4), when=lambda p: p["h_num_slices"] > 1, field="hyperprior.max_support",
         doc="previous slices seen (-1: all)"),
    Axis("h_attn_dim", (0, 32, 64, 96, 128), field="hyperprior.attn_dim", doc="SWAtten inner width (0: none)"),
    Axis("h_attn_heads", (1, 2, 4, 8), when=_hp_attn, field="hyperprior.attn_head_dim",
         **_heads(lambda h: h["attn_dim"]), doc="SWAtten heads"),
    Axis("h_attn_depth", low=1, high=2, when=_hp_attn, field="hyperprior.attn_depth", doc="SWAtten transformer blocks"),
    Axis("h_attn_res_units", low=0, high=3, when=_hp_attn, field="hyperprior.attn_res_units",
         doc="SWAtten residual units"),
    Axis("h_shift", (False, True), field="hyperprior.shift", doc="shifted windows in SWAtten and h_s"),
    # the depth sets the number of hidden widths (placeholders), each width axis below then sets one
    Axis("h_slice_depth", low=1, high=3, field="hyperprior.slice_hidden", to_field=lambda depth, h: (0,) * depth,
         from_field=lambda hidden, h: len(hidden), doc="hidden layers of the mean/scale/LRP chains"),
    *(Axis(f"h_slice_width_{i}", (64, 96, 128, 160, 224), when=lambda p, i=i: p["h_slice_depth"] > i,
           field=f"hyperprior.slice_hidden[{i}]", doc=f"width of hidden layer {i}") for i in range(3)),
    Axis("h_lrp", (True, False), field="hyperprior.lrp", doc="latent residual prediction"),
    Axis("h_hs_width", (64, 96, 128, 192), field="hyperprior.hs_width", doc="hyper-decoder width"),
    Axis("h_hs_depth", low=0, high=2, field="hyperprior.hs_depth", doc="hyper-decoder blocks"),
    Axis("h_hs_block", BLOCKS, when=lambda p: p["h_hs_depth"] > 0, field="hyperprior.hs_block",
         doc="hyper-decoder block type"),
    Axis("h_hs_heads", (1, 2, 4), when=lambda p: p["h_hs_depth"] > 0 and is_attention_block(p["h_hs_block"]),
         field="hyperprior.hs_head_dim", **_heads(lambda h: attention_width(h["hs_block"], h["hs_width"])),
         doc="hyper-decoder heads"),
)

PARTS = {"synthesis": SYNTHESIS_AXES, "hyperprior": HYPERPRIOR_AXES, "joint": SYNTHESIS_AXES + HYPERPRIOR_AXES}


def axes(part: str) -> tuple:
    if part not in PARTS:
        raise ConfigError("part", f"unknown part {part!r}; choose one of {sorted(PARTS)}")
    return PARTS[part]


def _fields(section_config) -> dict:
    return {f.name: getattr(section_config, f.name) for f in dataclasses.fields(section_config)}


def config_from_params(params: Params, part: str, base: CodecConfig | None = None) -> CodecConfig:
    """Validated codec config from flat axis values; the part not searched comes from ``base``.

    Each searched section starts from its config class's defaults and every axis writes its field in order.
    """
    from .presets import teacher_config

    base = base or teacher_config()
    applied = applicable(params, part)
    sections = {ax.section: None for ax in axes(part)}
    built = {s: _fields(type(getattr(base, s))()) for s in sections}
    for ax in axes(part):
        ax.write(built[ax.section], applied)
    return dataclasses.replace(base, **{s: type(getattr(base, s))(**f) for s, f in built.items()})


def applicable(params: Params, part: str) -> Params:
    """The subset of ``params`` whose axes apply (in order), as an Optuna trial would have sampled."""
    out: Params = {}
    for ax in axes(part):
        if ax.applies(out):
            if ax.name not in params:
                raise ConfigError(ax.name, "missing from the sampled parameters")
            out[ax.name] = params[ax.name]
    return out


def params_from_config(cfg: CodecConfig, part: str) -> Params:
    """The axis values that ``config_from_params`` maps back to ``cfg`` (to enqueue presets as trials).

    Raises ConfigError naming the axis when ``cfg`` lies outside its sampled domain, or naming the part when the
    axes cannot express ``cfg`` (e.g. a field that no axis sets differs from its default).
    """
    p: Params = {}
    for ax in axes(part):
        if ax.applies(p):
            p[ax.name] = ax.read(_fields(getattr(cfg, ax.section)))
            ax.check(p[ax.name])
    if config_from_params(p, part, cfg) != cfg:
        raise ConfigError(part, "this config cannot be expressed by the sampled axes")
    return p
