"""Plain-data round trip of configs (dict, JSON, YAML) and the stable config id."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ._checks import check_known_keys
from .config import CodecConfig
from .errors import ConfigError
from .hyperprior import HyperpriorConfig
from .synthesis import SynthesisConfig

_SECTIONS = {"synthesis": SynthesisConfig, "hyperprior": HyperpriorConfig}
CODEC_KEYS = ("encoder_width", "synthesis", "hyperprior")
# names of earlier versions, read as today's: TCM's conv/transformer block was called "swin"
RENAMED = {("synthesis", "block"): {"swin": "convtrans"}, ("hyperprior", "hs_block"): {"swin": "convtrans"}}


def to_dict(cfg) -> dict:
    """Nested plain dict (tuples become lists) of a codec or part config."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = to_dict(v) if dataclasses.is_dataclass(v) else (list(v) if isinstance(v, tuple) else v)
    return out


def _part_from_dict(kind: type, section: str, data: Any):
    names = [f.name for f in dataclasses.fields(kind)]
    check_known_keys(section, data, names)
    data = {k: RENAMED.get((section, k), {}).get(v, v) if isinstance(v, str) else v for k, v in data.items()}
    try:
        return kind(**data)
    except TypeError as e:  # pragma: no cover - keys are checked above
        raise ConfigError(section, str(e)) from None


def from_dict(data: Any) -> CodecConfig:
    """Build a codec config; missing sections and fields take the teacher's (TCM-small) values."""
    check_known_keys("codec", data, CODEC_KEYS)
    kwargs = {}
    for key, kind in _SECTIONS.items():
        if key in data:
            kwargs[key] = _part_from_dict(kind, key, data[key])
    if "encoder_width" in data:
        kwargs["encoder_width"] = data["encoder_width"]
    return CodecConfig(**kwargs)


def canonical_json(cfg: CodecConfig) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))


def config_id(cfg: CodecConfig) -> str:
    """12 hex digits of the SHA-256 of the canonical JSON: stable across runs, machines and key order."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:12]


def dumps(cfg: CodecConfig, fmt: str = "json") -> str:
    data = to_dict(cfg)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=False)
    return json.dumps(data, indent=2) + "\n"


def loads(text: str, fmt: str = "json") -> CodecConfig:
    try:
        if fmt == "yaml":
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError("config", f"not valid {fmt.upper()}: {str(e).splitlines()[0]}") from None
    return from_dict(data)


def load(path: str | Path) -> CodecConfig:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError("config", f"no such file: {path}")
    fmt = "yaml" if path.suffix in (".yaml", ".yml") else "json"
    return loads(path.read_text(), fmt)


def save(cfg: CodecConfig, path: str | Path) -> Path:
    path = Path(path)
    fmt = "yaml" if path.suffix in (".yaml", ".yml") else "json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(cfg, fmt))
    return path
