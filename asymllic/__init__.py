"""asymllic: the torch side of the decoder design-space explorer (models, codec, complexity, training)."""
import warnings

# compressai decorates helpers with torch.jit.script, which torch >= 2.10 flags as deprecated on import.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)

__version__ = "0.1.0"
