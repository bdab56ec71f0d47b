"""Load generator: streams synthetic batches to a running collector and measures it.

Each simulated agent enrolls with one of the tokens in --tokens (before the clock starts),
opens the real agent stream over mutual TLS (the collector verified against --ca), sends Hello,
then batches of synthetic sshd events with up to --window batches unacknowledged. It prints the
events/s acknowledged (an Ack means durably stored) and the p50/p99 latency from each event's
creation to its acknowledgement, which bounds the latency from event time to stored.

    for i in 0 1 2 3; do canhgac-collector tokens create --agent-id bench-$i \
        --config demo-state/collector.yaml; done > tokens.txt
    python bench/loadgen.py --address localhost:9440 --ca demo-state/collector/pki/ca.crt \
        --tokens tokens.txt --agents 4 --events 200000 --batch 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import grpc

from canhgac.ids import new_id
from canhgac.v1 import agent_pb2, events_pb2

STREAM = "/canhgac.v1.AgentService/Stream"
ENROLL = "/canhgac.v1.AgentService/Enroll"


async def enroll_agents(ns: argparse.Namespace) -> list[tuple[str, bytes, bytes]]:
    """(agent id, certificate PEM, key PEM) per simulated agent, one token each."""
    from agent.enroll.keys import csr_pem, key_pem, new_key

    tokens = [t.strip() for t in Path(ns.tokens).read_text().splitlines() if t.strip()]
    if len(tokens) < ns.agents:
        raise SystemExit(
            f"--tokens holds {len(tokens)} tokens; --agents {ns.agents} needs one each"
        )
    host = ns.address.rsplit(":", 1)[0]
    creds = grpc.ssl_channel_credentials(root_certificates=Path(ns.ca).read_bytes())
    identities = []
    async with grpc.aio.secure_channel(ns.enroll or f"{host}:9442", creds) as channel:
        call = channel.unary_unary(
            ENROLL,
            request_serializer=agent_pb2.EnrollRequest.SerializeToString,
            response_deserializer=agent_pb2.EnrollResponse.FromString,
        )
        for token in tokens[: ns.agents]:
            key = new_key()
            request = agent_pb2.EnrollRequest(token=token, csr_pem=csr_pem(key), hostname="bench")
            response = await call(request, timeout=30)
            identities.append((response.agent_id, response.certificate_pem.encode(), key_pem(key)))
    return identities


def synthetic_event(agent_id: str, i: int) -> events_pb2.Event:
    now = time.time_ns()
    ip = f"198.51.100.{i % 250 + 1}"
    return events_pb2.Event(
        id=new_id(now),
        time_ns=now,
        created_ns=now,
        agent_id=agent_id,
        host=agent_id,
        category="authentication",
        type="start",
        action="ssh_login",
        outcome=events_pb2.OUTCOME_FAILURE,
        source="authlog",
        original=f"Nov 22 12:00:00 {agent_id} sshd[{i}]: Failed password for root from {ip} "
        f"port {40000 + i % 20000} ssh2",
        auth=events_pb2.AuthEvent(
            user="root",
            source_ip=ip,
            source_port=40000 + i % 20000,
            method="password",
            process_name="sshd",
            process_pid=i % 60000,
        ),
    )


def _serialize(msg: agent_pb2.AgentMessage | bytes) -> bytes:
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


async def run_agent(
    ns: argparse.Namespace, index: int, per_agent: int, latencies: list[float]
) -> int:
    agent_id = f"bench-{os.getpid()}-{index}"
    if ns.insecure:
        # Only for a collector in tls.mode insecure_dev, asked for with --insecure.
        channel = grpc.aio.insecure_channel(ns.address)
    else:
        agent_id, cert, key = ns.identities[index]
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(ns.ca).read_bytes(), private_key=key, certificate_chain=cert
        )
        channel = grpc.aio.secure_channel(ns.address, creds)
    acked = 0
    async with channel:
        call = channel.stream_stream(
            STREAM,
            request_serializer=_serialize,
            response_deserializer=agent_pb2.CollectorMessage.FromString,
        )()
        await call.write(agent_pb2.AgentMessage(hello=agent_pb2.Hello(agent_id=agent_id)))
        welcome = await call.read()
        if welcome is grpc.aio.EOF or not welcome.HasField("welcome"):
            raise RuntimeError(f"collector did not welcome the agent: {welcome}")
        window = asyncio.Semaphore(ns.window)
        sent_created: dict[int, list[int]] = {}
        batches = (per_agent + ns.batch - 1) // ns.batch
        interval = ns.batch * ns.agents / ns.rate if ns.rate else 0.0

        async def reader() -> None:
            nonlocal acked
            answered = 0
            while answered < batches:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    raise RuntimeError("stream ended early")
                if not (msg.HasField("ack") or msg.HasField("reject")):
                    continue  # FlowControl: this generator keeps its own window
                answered += 1
                now = time.time_ns()
                seq = msg.ack.seq if msg.HasField("ack") else msg.reject.seq
                for created in sent_created.pop(seq, []):
                    latencies.append((now - created) / 1e6)
                if msg.HasField("ack"):
                    acked += msg.ack.events
                window.release()

        # Events are built once and re-stamped per batch (time, id), as building a message from
        # scratch costs more CPU than the collector spends storing it; each event is stamped
        # when its batch is sent, with increasing times and unique ids like a real agent's.
        message = agent_pb2.AgentMessage(
            batch=agent_pb2.EventBatch(
                agent_id=agent_id, events=[synthetic_event(agent_id, k) for k in range(ns.batch)]
            )
        )
        task = asyncio.create_task(reader())
        start = time.perf_counter()
        i = 0
        for seq in range(1, batches + 1):
            await window.acquire()
            if interval:
                delay = start + (seq - 1) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            n = min(ns.batch, per_agent - i)
            if n < len(message.batch.events):
                del message.batch.events[n:]
            now = time.time_ns()
            for k, ev in enumerate(message.batch.events):
                ev.time_ns = ev.created_ns = now + k
                ev.id = f"{agent_id}-{i + k:012d}"
            i += n
            message.batch.seq = seq
            sent_created[seq] = [now] * n
            await call.write(message.SerializeToString())
        await task
        await call.done_writing()
    return acked


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def main_async(ns: argparse.Namespace) -> int:
    per_agent = ns.events // ns.agents
    latencies: list[float] = []
    ns.identities = [] if ns.insecure else await enroll_agents(ns)
    start = time.perf_counter()
    acked = await asyncio.gather(
        *(run_agent(ns, i, per_agent, latencies) for i in range(ns.agents))
    )
    elapsed = time.perf_counter() - start
    total = sum(acked)
    print(f"agents={ns.agents} batch={ns.batch} window={ns.window} rate={ns.rate or 'max'}")
    print(f"stored and acknowledged: {total} events in {elapsed:.2f} s")
    print(f"throughput: {total / elapsed:,.0f} events/s")
    print(
        f"latency created->stored: p50={percentile(latencies, 50):.1f} ms "
        f"p99={percentile(latencies, 99):.1f} ms "
        f"mean={statistics.fmean(latencies) if latencies else float('nan'):.1f} ms"
    )
    if ns.target_eps:
        verdict = "meets" if total / elapsed >= ns.target_eps else "BELOW"
        print(f"target {ns.target_eps:,} events/s: {verdict}")
    return 0 if total == per_agent * ns.agents else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--address", default="localhost:9440")
    p.add_argument("--ca", help="CA certificate of the collector (state_dir/pki/ca.crt)")
    p.add_argument("--insecure", action="store_true", help="plaintext (collector in insecure_dev)")
    p.add_argument("--tokens", help="file of enrollment tokens, one per line and agent")
    p.add_argument("--enroll", help="enrollment address (default: --address's host, port 9442)")
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--rate", type=float, default=0, help="total events/s to offer (0: as fast)")
    p.add_argument("--target-eps", type=int, default=0, help="print whether this is met")
    ns = p.parse_args()
    if not ns.insecure and not (ns.ca and ns.tokens):
        p.error("--ca and --tokens are required unless --insecure")
    return asyncio.run(main_async(ns))


if __name__ == "__main__":
    sys.exit(main())
