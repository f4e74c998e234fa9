from .encoder import build_analysis, build_hyper_analysis
from .hyperprior import build_hyper_decoder
from .lic import ENCODER_PARTS, ENTROPY_TABLES, HYPERPRIOR_PARTS, LicCodec
from .synthesis import build_synthesis

__all__ = ["ENCODER_PARTS", "ENTROPY_TABLES", "HYPERPRIOR_PARTS", "LicCodec", "build_analysis",
           "build_hyper_analysis", "build_hyper_decoder", "build_synthesis"]
