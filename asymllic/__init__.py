"""asymllic: the torch side of the decoder design-space explorer (models, codec, complexity, training)."""
import warnings

# compressai decorates helpers with torch.jit.script, which torch >= 2.10 flags as deprecated on import.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)

from .compressai_import import install as _install

_install()  # CompressAI imported without torch_geometric (see asymllic.compressai_import)

__version__ = "0.1.0"

# the few functions a script needs to use an exported codec, imported (with torch) on first use
_LAZY = {"load_model": "asymllic.codec.reference", "compress_file": "asymllic.codec.coding", "decompress_file": "asymllic.codec.coding"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'asymllic' has no attribute {name!r}")
