"""Signed evidence bundles for independent assessors (layer 3).

`export.export_bundle` writes one bundle for a system and a period; `verify.verify_bundle`
checks one offline with nothing but the collector's public key. `bundle.py` says why the
bundle is a tar file and what its manifest holds.
"""
