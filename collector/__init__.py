"""Canh Gác collector: ingest, detection, storage and the four layer interfaces."""
