"""Reusable blocks, one file per concern, built by name through ``asymllic.layers.factory``."""
from .attention import ResidualUnit, SWAtten
from .transformer import ConvTransBlock, SwinStack, TransformerBlock, WindowTransformerBlock
from .window_attention import WindowAttention

__all__ = ["ConvTransBlock", "ResidualUnit", "SWAtten", "SwinStack", "TransformerBlock", "WindowAttention",
           "WindowTransformerBlock"]
