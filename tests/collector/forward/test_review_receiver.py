"""Review findings on the demo receiver: an oversized body is refused before it is all read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from collector.forward.receiver.app import MAX_BODY, build_receiver
from collector.forward.receiver.taxii import API_ROOT, COLLECTION_ID, MAX_CONTENT_LENGTH, MEDIA_TYPE

CHUNK = 64 * 1024


class Oversized:
    """A request body three times `limit`, counting what the server took from it."""

    def __init__(self, limit: int) -> None:
        self.chunks = 3 * limit // CHUNK
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += CHUNK
            yield b" " * CHUNK


@pytest.mark.parametrize(
    ("path", "headers", "limit"),
    [
        ("/national/v1/reports", {"content-type": "application/json"}, MAX_BODY),
        (
            f"{API_ROOT}collections/{COLLECTION_ID}/objects/",
            {"content-type": MEDIA_TYPE, "accept": MEDIA_TYPE},
            MAX_CONTENT_LENGTH,
        ),
    ],
    ids=["national", "taxii"],
)
async def test_an_oversized_body_is_refused_at_the_limit(
    tmp_path: Path, path: str, headers: dict[str, str], limit: int
) -> None:
    app = build_receiver(tmp_path)
    body = Oversized(limit)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent <= limit + 2 * CHUNK


async def test_a_declared_length_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    app = build_receiver(tmp_path)
    body = Oversized(MAX_BODY)
    transport = httpx.ASGITransport(app=app)
    headers = {"content-type": "application/json", "content-length": str(MAX_BODY + 1)}
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        response = await client.post("/national/v1/reports", content=body, headers=headers)
    assert response.status_code == 413
    assert body.sent <= CHUNK
    assert app.state.inbox.rejected == 1
