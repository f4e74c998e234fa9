"""``LicCodec``: the TCM encoder side plus a configurable decoder side, trainable and entropy-coded.

.. code-block:: none

    x -> g_a -> y -> h_a -> z -> [EntropyBottleneck] -> z_hat
                                   z_hat -> h_mean_s, h_scale_s -> latent means, scales
    y, means, scales -> slice by slice: SWAtten -> mu, sigma -> [GaussianConditional] -> y_hat_i (+ LRP)
    y_hat -> g_s -> x_hat

With ``space.teacher_config(N)`` this is TCM exactly, key for key: an official LIC_TCM checkpoint
loads into it with ``strict=True``. Training uses straight-through rounding; evaluation rounds, so
``forward`` in eval mode reconstructs exactly what ``decompress`` decodes.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from compressai.entropy_models import GaussianConditional
from compressai.models import CompressionModel
from compressai.ops import quantize_ste
from space import HYPER_CHANNELS, CodecConfig

from ..device import fp32
from ..layers.gdn import fp32_gdn
from .encoder import build_analysis, build_hyper_analysis
from .entropy import ZBottleneck
from .hyperprior import build_attention, build_hyper_decoder, build_slice_transforms
from .synthesis import build_synthesis

ENCODER_PARTS = ("g_a", "h_a")
# buffers that CompressAI resizes when it builds the entropy-coding tables (update())
ENTROPY_TABLES = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
HYPERPRIOR_PARTS = ("h_mean_s", "h_scale_s", "atten_mean", "atten_scale", "cc_mean_transforms",
                    "cc_scale_transforms", "lrp_transforms", "entropy_bottleneck", "gaussian_conditional")


def _round(x: torch.Tensor, training: bool) -> torch.Tensor:
    return quantize_ste(x) if training else torch.round(x)


def _lrp_transforms(hp) -> nn.ModuleList:
    return build_slice_transforms(hp, lrp=True) if hp.lrp else nn.ModuleList()


def codec_parts(config: CodecConfig) -> tuple:
    """(name, builder, arguments) of each part of a ``LicCodec``, in registration (and state-dict key) order.
    A part is ``builder(*arguments)``: two configs with equal arguments for a part have equal parts."""
    hp, n = config.hyperprior, config.encoder_width
    return (("g_a", build_analysis, (n,)), ("h_a", build_hyper_analysis, (n,)),
            ("g_s", build_synthesis, (config.synthesis,)),
            ("h_mean_s", build_hyper_decoder, (hp,)), ("h_scale_s", build_hyper_decoder, (hp,)),
            ("atten_mean", build_attention, (hp,)), ("atten_scale", build_attention, (hp,)),
            ("cc_mean_transforms", build_slice_transforms, (hp,)),
            ("cc_scale_transforms", build_slice_transforms, (hp,)),
            ("lrp_transforms", _lrp_transforms, (hp,)),
            ("entropy_bottleneck", ZBottleneck, (HYPER_CHANNELS,)),
            ("gaussian_conditional", GaussianConditional, (None,)))


def build_part(name: str, builder, arguments: tuple) -> nn.Module:
    """A part of ``codec_parts``, ready to use: built, every GDN in it computing in fp32 (GDN's x^2 overflows fp16
    under autocast)."""
    return fp32_gdn(builder(*arguments))


class LicCodec(CompressionModel):
    def __init__(self, config: CodecConfig, build=build_part):
        """``build(name, builder, arguments)`` makes each part of ``codec_parts(config)`` (default ``build_part``;
        counting passes one that reuses meta parts built for earlier configs)."""
        super().__init__()
        self.config = config
        self.num_slices = config.hyperprior.num_slices
        for name, builder, arguments in codec_parts(config):
            setattr(self, name, build(name, builder, arguments))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """CompressAI's load (the entropy models' tables resized to the checkpoint's, old key names remapped),
        visiting the entropy models alone: CompressAI's own tests every module's name against every key, about
        a million string tests (0.7 s) for TCM."""
        from compressai.entropy_models import EntropyBottleneck
        from compressai.models.utils import remap_old_keys, update_registered_buffers

        tables = ["_quantized_cdf", "_offset", "_cdf_length"]
        for name, module in self.named_modules():
            if not isinstance(module, (EntropyBottleneck, GaussianConditional)) or \
                    not any(k.startswith(name) for k in state_dict):
                continue
            if isinstance(module, EntropyBottleneck):
                update_registered_buffers(module, name, tables, state_dict)
                state_dict = remap_old_keys(name, state_dict)
            else:
                update_registered_buffers(module, name, tables + ["scale_table"], state_dict)
        return nn.Module.load_state_dict(self, state_dict, strict=strict, assign=assign)

    # --- the three pieces the training stages use ---------------------------------------------
    def hyper_params(self, z_hat: torch.Tensor):
        return self.h_mean_s(z_hat), self.h_scale_s(z_hat)

    def slice_params(self, index: int, means, scales, support: list):
        """mu, sigma and the mean support of slice ``index`` given the previous y-hat slices."""
        hp = self.config.hyperprior
        support = support[: hp.support_slices(index)]
        mean_support = self.atten_mean[index](torch.cat([means] + support, dim=1))
        scale_support = self.atten_scale[index](torch.cat([scales] + support, dim=1))
        return self.cc_mean_transforms[index](mean_support), self.cc_scale_transforms[index](scale_support), mean_support

    def refine(self, index: int, mean_support, y_hat_slice):
        if not self.config.hyperprior.lrp:
            return y_hat_slice
        lrp = self.lrp_transforms[index](torch.cat([mean_support, y_hat_slice], dim=1))
        return y_hat_slice + 0.5 * torch.tanh(lrp)

    def entropy_forward(self, y: torch.Tensor, likelihoods: bool = True) -> dict:
        """y -> y_hat and (unless ``likelihoods`` is False, as in pure inference) the likelihoods of y and z.

        Under autocast the networks run in low precision, but everything the entropy coder depends on
        (z, the means and scales, rounding, the likelihoods) is fp32."""
        device = y.device
        y = y.float()
        z = self.h_a(y).float()
        with fp32(device):
            z_likelihoods = self.entropy_bottleneck(z)[1] if likelihoods else None
            offset = self.entropy_bottleneck._get_medians()
            z_hat = _round(z - offset, self.training) + offset
        means, scales = (t.float() for t in self.hyper_params(z_hat))
        y_hat_slices, y_likelihoods = [], []
        for i, y_slice in enumerate(y.chunk(self.num_slices, 1)):
            mu, sigma, mean_support = self.slice_params(i, means, scales, y_hat_slices)
            mu, sigma = mu.float(), sigma.float()
            with fp32(device):
                if likelihoods:
                    y_likelihoods.append(self.gaussian_conditional(y_slice, sigma, mu)[1])
                y_hat_slice = _round(y_slice - mu, self.training) + mu
            y_hat_slices.append(self.refine(i, mean_support, y_hat_slice).float())
        out = {"y_hat": torch.cat(y_hat_slices, 1)}
        if likelihoods:
            out["likelihoods"] = {"y": torch.cat(y_likelihoods, 1), "z": z_likelihoods}
        return out

    def forward(self, x: torch.Tensor, likelihoods: bool = True) -> dict:
        out = self.entropy_forward(self.g_a(x), likelihoods)
        out["x_hat"] = self.g_s(out.pop("y_hat"))
        return out

    # --- entropy coding ----------------------------------------------------------------------
    # The entropy-parameter path (z_hat -> h_s -> slice networks -> scale indexes) must compute the same indexes
    # when encoding and when decoding, or the rANS decoder loses sync. ``asymllic.codec.coding`` runs it on the CPU
    # (``entropy``: a CPU copy of this model) whatever device g_a and g_s use, and checks a CRC-32 of the symbols.
    def latent_slices(self, z_hat: torch.Tensor, symbols_of) -> torch.Tensor:
        """y_hat from z_hat, slice by slice, in the order both coders follow: ``symbols_of(i, mu, indexes)`` gives
        slice i's integer symbols (quantised y when encoding, the rANS decoder's output when decoding)."""
        means, scales = self.hyper_params(z_hat)
        gc = self.gaussian_conditional
        y_hat_slices: list = []
        for i in range(self.num_slices):
            mu, sigma, mean_support = self.slice_params(i, means, scales, y_hat_slices)
            symbols = symbols_of(i, mu, gc.build_indexes(sigma))
            y_hat_slices.append(self.refine(i, mean_support, gc.dequantize(symbols, mu)))
        return torch.cat(y_hat_slices, 1)

    def _tables(self) -> tuple:
        gc = self.gaussian_conditional
        return gc.quantized_cdf.tolist(), gc.cdf_length.reshape(-1).int().tolist(), gc.offset.reshape(-1).int().tolist()

    @torch.no_grad()
    def compress(self, x: torch.Tensor, entropy: "LicCodec | None" = None) -> dict:
        """x -> {"strings", "shape", "symbols_crc", "y"} (y: the analysis output coded, on this model's device).
        ``entropy``: the codec (this one's weights, e.g. on the CPU) that runs the entropy-parameter path; default
        this one."""
        y = self.g_a(x)
        z = self.h_a(y)
        entropy = entropy or self
        place = next(entropy.parameters()).device
        return {**entropy.compress_latents(y.float().to(place), z.float().to(place)), "y": y}

    @torch.no_grad()
    def compress_latents(self, y: torch.Tensor, z: torch.Tensor) -> dict:
        from compressai.ans import BufferedRansEncoder

        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        y_chunks = y.chunk(self.num_slices, 1)
        symbols, indexes, crc = [], [], _Crc()

        def quantise(i: int, mu, index):
            q = self.gaussian_conditional.quantize(y_chunks[i], "symbols", mu)
            flat = q.reshape(-1).tolist()
            symbols.extend(flat)
            indexes.extend(index.reshape(-1).tolist())
            crc.add(flat)
            return q

        self.latent_slices(z_hat, quantise)
        encoder = BufferedRansEncoder()
        encoder.encode_with_indexes(symbols, indexes, *self._tables())
        return {"strings": [[encoder.flush()], z_strings], "shape": z.size()[-2:], "symbols_crc": crc.value}

    @torch.no_grad()
    def decompress(self, strings: list, shape, synthesis=None, entropy: "LicCodec | None" = None) -> dict:
        """``synthesis``: a callable y_hat -> x_hat run instead of ``g_s`` (e.g. ``asymllic.codec.onnx_runtime.OnnxSynthesis``);
        ``entropy``: as in ``compress``. Returns x_hat and the CRC-32 of the decoded symbols."""
        y_hat, crc = (entropy or self).decompress_latents(strings, shape)
        place = next(self.g_s.parameters()).device
        x_hat = (self.g_s if synthesis is None else synthesis)(y_hat.to(place)).clamp_(0, 1)
        return {"x_hat": x_hat, "symbols_crc": crc}

    @torch.no_grad()
    def decompress_latents(self, strings: list, shape) -> tuple:
        """(y_hat, CRC-32 of the decoded symbols) from the y and z strings."""
        from compressai.ans import RansDecoder

        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        tables = self._tables()
        decoder = RansDecoder()
        decoder.set_stream(strings[0][0])
        crc = _Crc()

        def decode(i: int, mu, index):
            flat = decoder.decode_stream(index.reshape(-1).tolist(), *tables)
            crc.add(flat)
            return torch.tensor(flat, dtype=torch.int32, device=mu.device).reshape(mu.shape)

        return self.latent_slices(z_hat, decode), crc.value


class _Crc:
    """CRC-32 of a sequence of integer symbols (as little-endian int32), fed slice by slice."""

    def __init__(self):
        self.value = 0

    def add(self, symbols: list) -> None:
        import zlib

        import numpy as np

        self.value = zlib.crc32(np.asarray(symbols, dtype="<i4").tobytes(), self.value)
