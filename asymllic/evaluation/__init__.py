"""Evaluation: RD points on an image set, BD-rate and BD-PSNR between RD curves, metrics, decode latency,
receptive fields."""
