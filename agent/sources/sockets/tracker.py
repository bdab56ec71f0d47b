"""Turning successive socket-table snapshots into listen / close / connection observations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .procnet import SocketEntry, is_loopback, is_unspecified

CONNECTION_STATES: Final = frozenset({"ESTABLISHED", "SYN_SENT"})
# The only rows `update` looks at, per transport; the rest need not be decoded at all.
WANTED_STATES: Final = {"tcp": CONNECTION_STATES | {"LISTEN"}, "udp": frozenset({"CLOSE"})}

ListenKey = tuple[str, str, int, int]
ConnKey = tuple[str, str, int, str, int, int]


@dataclass(frozen=True, slots=True)
class Observation:
    """Something worth an event. `direction` is "listen", "outbound" or "inbound"."""

    action: str  # "listen" | "listen_closed" | "connection_opened"
    direction: str
    entry: SocketEntry


class SocketTracker:
    """Remembers what was already reported so each socket yields its events once.

    Contract for `update(snapshot)` (one full read of all socket tables):
    * a listening TCP socket or an unconnected bound UDP socket not seen in the previous
      snapshot -> "listen"; one seen before but absent now -> "listen_closed". Keyed by
      (transport, local address, port, inode), so a port reopened by another socket is a close
      and a new listen.
    * an ESTABLISHED or SYN_SENT TCP socket not seen before -> "connection_opened", keyed by
      the 4-tuple + inode so a long-lived connection is reported once. It is "inbound" when
      ESTABLISHED on a port some socket listens on, else "outbound"; inbound ones only with
      `report_inbound`.
    * With `include_loopback` false, listeners bound to a loopback address and connections to
      one are ignored.
    * At most `max_tracked` keys are remembered; a new socket beyond that is neither reported
      nor remembered and is counted in `limited` (per snapshot, so it is counted again on the
      next one while it lives). Keys of sockets gone from the snapshot are forgotten.
    """

    def __init__(self, *, report_inbound: bool, include_loopback: bool, max_tracked: int) -> None:
        self._report_inbound = report_inbound
        self._include_loopback = include_loopback
        self._max = max_tracked
        self._listens: dict[ListenKey, SocketEntry] = {}
        self._conns: set[ConnKey] = set()
        self.limited = 0

    def __len__(self) -> int:
        return len(self._listens) + len(self._conns)

    def update(self, snapshot: Iterable[SocketEntry]) -> list[Observation]:
        entries = list(snapshot)
        self.limited = 0
        listening_ports = {
            e.local_port for e in entries if e.transport == "tcp" and e.state == "LISTEN"
        }
        listens: dict[ListenKey, SocketEntry] = {}
        conns: dict[ConnKey, tuple[str, SocketEntry]] = {}
        for e in entries:
            if self._is_listener(e):
                if self._include_loopback or not is_loopback(e.local_ip):
                    listens[(e.transport, e.local_ip, e.local_port, e.inode)] = e
            elif e.transport == "tcp" and e.state in CONNECTION_STATES:
                inbound = e.state == "ESTABLISHED" and e.local_port in listening_ports
                if inbound and not self._report_inbound:
                    continue
                if not self._include_loopback and is_loopback(e.remote_ip):
                    continue
                key = (e.transport, e.local_ip, e.local_port, e.remote_ip, e.remote_port, e.inode)
                conns[key] = ("inbound" if inbound else "outbound", e)

        out = [
            Observation("listen_closed", "listen", e)
            for key, e in self._listens.items()
            if key not in listens
        ]
        self._listens = {k: e for k, e in self._listens.items() if k in listens}
        self._conns &= conns.keys()
        for lkey, e in listens.items():
            if lkey not in self._listens and self._admit():
                self._listens[lkey] = e
                out.append(Observation("listen", "listen", e))
        for ckey, (direction, e) in conns.items():
            if ckey not in self._conns and self._admit():
                self._conns.add(ckey)
                out.append(Observation("connection_opened", direction, e))
        return out

    def _admit(self) -> bool:
        if len(self) < self._max:
            return True
        self.limited += 1
        return False

    @staticmethod
    def _is_listener(e: SocketEntry) -> bool:
        if e.transport == "tcp":
            return e.state == "LISTEN"
        # An unconnected UDP socket (state CLOSE, no peer) with a port is one that receives.
        return (
            e.state == "CLOSE"
            and e.local_port != 0
            and e.remote_port == 0
            and is_unspecified(e.remote_ip)
        )
