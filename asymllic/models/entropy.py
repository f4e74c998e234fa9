"""The z prior: CompressAI's factorized ``EntropyBottleneck`` with a forward that never reads tensors back.

CompressAI builds its channel permutation as a tensor on the input's device and unpacks it into ``permute``,
which reads each index back to the host: four device syncs per training step on a GPU, and no forward at all on
the meta device. Here the permutation is a tuple. Parameters, buffers and keys are CompressAI's, so checkpoints
(ours and LIC_TCM's) load unchanged, and compress/decompress are CompressAI's own.
"""
from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck


class ZBottleneck(EntropyBottleneck):
    def forward(self, x: torch.Tensor, training: bool | None = None) -> tuple:
        """(z_hat: noisy in training, dequantised in evaluation; likelihoods), both shaped as ``x``."""
        training = self.training if training is None else training
        order = (1, 0, *range(2, x.ndim))  # channels first: one density per channel; the permutation is its own inverse
        per_channel = x.permute(order).contiguous()
        values = per_channel.reshape(per_channel.size(0), 1, -1)
        z_hat = self.quantize(values, "noise" if training else "dequantize", self._get_medians())
        likelihood = self._likelihood(z_hat)[0]
        if self.use_likelihood_bound:
            likelihood = self.likelihood_lower_bound(likelihood)
        back = lambda t: t.reshape(per_channel.shape).permute(order).contiguous()  # noqa: E731
        return back(z_hat), back(likelihood)
