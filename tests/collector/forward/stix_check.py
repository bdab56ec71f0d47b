"""The one check every STIX bundle produced by the tests goes through: stix2-validator, no
errors (warnings, such as the SHOULD about v4 ids of a bundle, are allowed)."""

from __future__ import annotations

import json
from typing import Any

from stix2validator import ValidationOptions, validate_string

OPTIONS = ValidationOptions(version="2.1")


def assert_valid_stix(bundle: str | dict[str, Any]) -> None:
    """Fail with the validator's messages unless `bundle` (a bundle or TAXII envelope) is valid."""
    if isinstance(bundle, str):
        bundle = json.loads(bundle)
    assert isinstance(bundle, dict)
    if bundle.get("type") != "bundle":  # a TAXII envelope: validate its objects as a bundle
        bundle = {
            "type": "bundle",
            "id": "bundle--2f8c3d1a-4b5e-4c6d-8e7f-9a0b1c2d3e4f",
            "objects": bundle["objects"],
        }
    results = validate_string(json.dumps(bundle), OPTIONS)
    errors = [str(e) for e in results.errors]
    assert errors == [], f"invalid STIX: {errors}"
    assert results.is_valid
