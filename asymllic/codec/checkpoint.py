"""Loading and saving codecs: our own checkpoints and official LIC_TCM ``.pth.tar`` files.

Only ``torch.load(..., weights_only=True)`` is used: a pickle that carries code is refused.
Our format is a dict ``{"format": "asymllic-codec", "version": 1|2, "config": <space dict>,
"state_dict": ..., "meta": {...}}``. Version 2 may also hold ``"base": {"path", "parts", "digest"}``: a
checkpoint of a fine-tuned stage keeps only the parts it trained (``parts``, e.g. ``g_s``: 27 MB of the
teacher's 180 MB) and reads the frozen rest from the teacher checkpoint at ``path``, whose frozen tensors
must still hash to ``digest``. An export is always self-contained (:func:`save_self_contained`).
An official TCM checkpoint is a dict with ``state_dict`` (keys maybe prefixed ``module.``); its encoder width
N is read from the shapes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from space import CodecConfig, ConfigError, config_id, from_dict, teacher_config, to_dict

from ..errors import CheckpointError
from ..files import copy_file, save_torch
from ..models import ENTROPY_TABLES, LicCodec
from ..models.meta import model_to_load
from ..options import DEFAULT_SEED

FORMAT = "asymllic-codec"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")
VERSION = 2


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        try:  # memory-mapped: weights stay on disk until a model copies them in
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (pre-zip) format
    except Exception as e:  # UnpicklingError for code in the pickle, RuntimeError for non-torch files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            raise CheckpointError(f"refused {path}: it is not a weights-only checkpoint ({first[:160]})") from None
        raise CheckpointError(f"cannot read checkpoint {path}: {first[:200]}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a checkpoint dict (got {type(obj).__name__})")
    return obj


def _strip_module(state: dict) -> dict:
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def _part(key: str) -> str:
    return key.split(".", 1)[0]


def _frozen(state: dict, parts) -> dict:
    return {k: v for k, v in state.items() if _part(k) not in parts}


def _frozen_of(base: Path, parts) -> dict:
    """The tensors a partial checkpoint takes from its base: all but its trained ``parts``."""
    return _frozen(config_and_state(read_checkpoint(base), base)[1], parts)


def _with_base(base: dict, state: dict, path) -> dict:
    """The partial ``state`` completed by its base checkpoint's frozen tensors, checked against their digest."""
    try:
        src, parts, digest = Path(base["path"]), tuple(base["parts"]), str(base["digest"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: bad base reference in checkpoint: {base!r}") from None
    if not src.is_file():
        raise CheckpointError(f"{path} holds only its trained parts ({', '.join(parts)}); the frozen rest comes from "
                              f"{src}, which is missing: put that teacher back, or use an export (self-contained)")
    frozen = _frozen_of(src, parts)
    if state_digest(frozen) != digest:
        raise CheckpointError(f"{path}: its teacher {src} changed since this checkpoint was trained "
                              "(the frozen weights differ)")
    return {**frozen, **state}


def config_of(obj: dict, path: str | Path = "checkpoint"):
    """The CodecConfig of a checkpoint dict, without reading any base checkpoint."""
    if obj.get("format") == FORMAT:
        try:
            return from_dict(obj["config"])
        except (KeyError, ConfigError) as e:
            raise CheckpointError(f"{path}: bad config in checkpoint: {e}") from None
    return config_and_state(obj, path)[0]


def config_and_state(obj: dict, path: str | Path = "checkpoint") -> tuple:
    """(CodecConfig, state_dict) of our format (a partial one completed by its base) or of an official TCM
    checkpoint."""
    if obj.get("format") == FORMAT:
        config = config_of(obj, path)
        state = obj.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: no state_dict in checkpoint")
        return config, _with_base(obj["base"], state, path) if obj.get("base") else state
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no state_dict of tensors found")
    state = _strip_module(state)
    first = state.get("g_a.0.conv1.weight")
    if first is None or first.dim() != 4:
        raise CheckpointError(f"{path}: not a TCM checkpoint (no g_a.0.conv1.weight)")
    try:
        return teacher_config(int(first.shape[0]) // 2), state
    except ConfigError as e:
        raise CheckpointError(f"{path}: unsupported TCM width: {e}") from None


def load_state(model: LicCodec, state: dict, path: str | Path = "checkpoint") -> None:
    """Strict load that names the mismatching keys instead of dumping torch's message."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state)
                   if own[k].shape != state[k].shape and not k.endswith(ENTROPY_TABLES))
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError(f"{path}: checkpoint does not fit the architecture: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_codec(path: str | Path, device: str | torch.device = "cpu", size: tuple | None = None,
               limits=None, decoding: bool = False) -> LicCodec:
    """A ready-to-code model (entropy tables built) from any supported checkpoint. With ``size`` =
    (width, height), the config is first checked against ``limits`` (MACs, memory) at that size."""
    obj = read_checkpoint(path)
    config, state = config_and_state(obj, path)
    if size is not None:
        from ..limits import Limits, check

        check(config, size, limits or Limits(), device, what=str(path), decoding=decoding)
    model = model_to_load(config)  # no random initial draws: the strict load below overwrites every weight
    load_state(model, state, path)
    if model.gaussian_conditional.quantized_cdf.numel() == 0 or model.entropy_bottleneck._quantized_cdf.numel() == 0:
        model.update(force=True)
    return model.to(device).eval()


def save_codec(model: LicCodec, path: str | Path, meta: dict | None = None, base: str | Path | None = None,
               parts: tuple = ()) -> Path:
    """Atomic: a killed save or a full disk never leaves a half-written checkpoint. With ``base`` (the
    checkpoint the model was fine-tuned from) only the trained ``parts`` are written, plus a reference to
    ``base`` and the digest of the frozen tensors taken from it."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj = {"format": FORMAT, "version": VERSION, "config": to_dict(model.config),
           "meta": dict(meta or {}, config_id=config_id(model.config))}
    if base is not None:
        base = Path(base).resolve()
        obj["base"] = {"path": str(base), "parts": list(parts), "digest": state_digest(_frozen_of(base, parts))}
        state = {k: v for k, v in state.items() if _part(k) in parts}
    obj["state_dict"] = state
    return save_torch(obj, path)


def base_of(path: str | Path) -> tuple:
    """(base checkpoint path or None, trained parts) of one of our checkpoints."""
    base = read_checkpoint(path).get("base") or {}
    return (Path(base["path"]) if base.get("path") else None), tuple(base.get("parts", ()))


def save_self_contained(src: str | Path, dst: str | Path) -> Path:
    """``src`` as a checkpoint that needs no other file (a partial one completed by its base; meta kept)."""
    obj = read_checkpoint(src)
    if not obj.get("base"):
        return copy_file(src, dst)
    config, state = config_and_state(obj, src)
    return save_torch({"format": FORMAT, "version": VERSION, "config": to_dict(config), "state_dict": state,
                       "meta": obj.get("meta", {})}, dst)


def _hash(state: dict):
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update((t.view(-1).view(torch.uint8) if t.numel() else t).numpy().tobytes())
    return h


def state_digest(state: dict) -> str:
    return _hash(state).hexdigest()[:16]


def weights_digest(model: LicCodec) -> bytes:
    """8-byte fingerprint of the weights and entropy tables, written into every bitstream."""
    return _hash(model.state_dict()).digest()[:8]


def new_codec(config: CodecConfig, seed: int = DEFAULT_SEED) -> LicCodec:
    """An untrained codec with its entropy tables built (enough to code real files)."""
    torch.manual_seed(seed)
    model = LicCodec(config)
    model.update(force=True)
    return model.eval()
