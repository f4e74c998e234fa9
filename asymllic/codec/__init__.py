"""The codec: the ``.alic`` bitstream, compress and decompress, checkpoints, model references, the ONNX g_s."""
