"""Review findings on data minimisation: address forms the scrubber used to let through."""

from __future__ import annotations

import pytest

from canhgac.v1 import alert_pb2
from collector.forward.minimise import INTERNAL, MinimisePolicy, minimise_alert, scrub_addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A single colon after a word ("addr:", "src:") separates it from a v6 address.
        ("addr:fd00::1", f"addr:{INTERNAL}"),
        ("client:fe80::1%eth0 refused", f"client:{INTERNAL} refused"),
        ("peer:[fd00::1]:443", f"peer:[{INTERNAL}]:443"),
    ],
)
def test_a_v6_address_after_a_word_and_a_colon_is_removed(text: str, expected: str) -> None:
    assert scrub_addresses(text) == expected


@pytest.mark.parametrize("text", ["std::map", "Foo::Bar", "src:2001:4860::8888", "12:30:45"])
def test_words_and_public_addresses_after_a_colon_are_kept(text: str) -> None:
    assert scrub_addresses(text) == text


def test_no_field_of_an_alert_keeps_a_colon_prefixed_internal_v6() -> None:
    alert = alert_pb2.Alert(
        id="al-1",
        rule_id="r",
        summary="login from addr:fd00::7",
        event_ids=["ev:fd00::7"],
        group={"peer": "peer:fd00::7"},
    )
    out = minimise_alert(alert, MinimisePolicy())
    assert "fd00" not in str(out).lower()
