"""asymllic: the torch side of the decoder design-space explorer (models, codec, complexity, training)."""
from .compressai_import import install as _install

_install()  # CompressAI imported without torch_geometric (see asymllic.compressai_import); nothing else of the
# process changes on import: no warning filter, log level or environment variable

__version__ = "0.1.0"

# the few functions a script needs to use an exported codec, imported (with torch) on first use
_LAZY = {"load_model": "asymllic.codec.reference", "compress_file": "asymllic.codec.coding", "decompress_file": "asymllic.codec.coding"}

__all__ = ["__version__", "compress_file", "decompress_file", "load_model"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'asymllic' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
