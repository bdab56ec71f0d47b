"""Sigma log-source tables by family of logs; see `collector.detection.pipeline`."""
