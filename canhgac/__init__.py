"""Canh Gác: shared core for the agent and the collector (errors, config, logs, wire contract)."""

__version__ = "0.1.0"
