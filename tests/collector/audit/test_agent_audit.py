"""A successful enrollment and a certificate renewal each leave an audit record by the agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.enroll.keys import csr_pem, new_key
from canhgac.v1 import agent_pb2
from collector.app import CollectorApp
from collector.audit.model import verify_chain
from collector.enroll.tokens import parse_token
from tests.collector.enroll.helpers import (
    RENEW,
    FakeClock,
    enroll_with,
    make_token,
    mtls_channel,
    running_collector,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CollectorApp]:
    async with running_collector(tmp_path, FakeClock()) as running:
        yield running


async def test_enroll_and_renew_are_audited_without_the_token(app: CollectorApp) -> None:
    token = await make_token(app, agent_id="web-01", system_id="portal")
    agent = await enroll_with(app, token)
    async with mtls_channel(app, agent) as channel:
        renew = channel.unary_unary(
            RENEW,
            request_serializer=agent_pb2.RenewRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        await renew(agent_pb2.RenewRequest(csr_pem=csr_pem(new_key())), timeout=10)

    every = await app.store.run(app.store.store.audit_records)
    # The collector's own records at start (configuration, rules) come first.
    assert [r.action for r in every[:2]] == ["config.apply", "rules.load"]
    assert verify_chain(every).ok
    records = [r for r in every if r.actor.startswith("agent:")]
    assert [(r.actor, r.action, r.target) for r in records] == [
        ("agent:web-01", "agent.enroll", "web-01"),
        ("agent:web-01", "agent.renew", "web-01"),
    ]
    assert records[0].detail["system_id"] == "portal"
    parsed = parse_token(token)
    assert parsed is not None
    token_id, secret = parsed
    assert records[0].detail["enrolled_with"] == token_id
    assert records[1].detail["previous_serial"] == records[0].detail["serial"]
    agent_record = await app.store.run(app.store.store.get_agent, "web-01")
    assert agent_record is not None
    assert records[1].detail["serial"] == agent_record.cert_serial
    for record in every:
        assert secret not in str(record)
