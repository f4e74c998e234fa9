"""Evaluation: RD points on an image set, metrics, decode latency, receptive fields."""
