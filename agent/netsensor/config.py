"""Configuration of the network sensor (`sources.netsensor` in agent.yaml)."""

from __future__ import annotations

from canhgac.strictmodel import Field, StrictModel

MiB = 1024 * 1024


class NetSensorConfig(StrictModel):
    """Where to capture and how much state the sensor may keep.

    Flows end on FIN or RST (both directions seen), after `flow_idle_timeout_s` without a
    packet, or are cut after `flow_active_timeout_s` (a long connection then gives several
    records). At `max_flows` the least recently seen flow is ended early ("evicted", counted).
    Connection attempts are summed per source and per destination address over windows of
    `attempts_window_s`; at most `max_attempt_keys` addresses are tracked per window (the rest
    are counted as `attempt_keys_dropped`).
    """

    # A network interface name (e.g. eth0, ens18); "any" captures on every interface.
    interface: str = Field("any", min_length=1, max_length=64)
    # A BPF filter applied in the kernel, in tcpdump syntax; "" captures everything.
    bpf_filter: str = Field("", max_length=4096)
    snaplen: int = Field(1600, ge=128, le=65535)
    receive_buffer_bytes: int = Field(16 * MiB, ge=1 * MiB, le=1024 * MiB)
    flow_idle_timeout_s: int = Field(60, ge=1, le=3600)
    flow_active_timeout_s: int = Field(300, ge=10, le=86_400)
    max_flows: int = Field(100_000, ge=100, le=10_000_000)
    attempts_window_s: int = Field(10, ge=1, le=600)
    max_attempt_keys: int = Field(50_000, ge=100, le=10_000_000)
    dns: bool = True
