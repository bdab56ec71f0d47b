"""Sigma `temporal` and `temporal_ordered`: several base rules matched by one group in time.

On top of the shared conventions in `base`, `TemporalCorrelation` (property-tested against a
brute-force twin for the ordered kind):

* `feed()` needs the reference keys of the rules an event matched; an event matching two of
  the referenced rules counts for both (with `aliases` it may then fall in two groups).
* `temporal`: the group's rules whose latest match is no older than `timespan` before the
  group's newest event are counted; the condition (by default: all of them) is checked on
  every event, only `gte`/`gt` are accepted. Per group and rule only the latest match is kept.
* `temporal_ordered`: the rules must match in the listed order, one event each, event times
  non-decreasing, and the first and last no more than `timespan` apart. Per group and step
  only the partial chain with the latest start is kept (the one most likely to complete in
  time); its end time guards the order, so an event arriving out of time order never
  completes a chain it precedes. For events in time order this finds every chain.
* As with event_count's sliding window: the hit comes at once, the group is emptied and stays
  quiet for one timespan (`suppressed`), and an event older than the window is `late`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canhgac.errors import RuleError
from collector.detection.correlation.base import (
    DEFAULT_MAX_GROUPS,
    EAGER_OPS,
    MAX_EVENT_IDS,
    Aliases,
    GroupKey,
    KeyCache,
    Threshold,
    WindowCorrelation,
    WindowHit,
    optional_int,
    origin,
    timed_ids,
)


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, and none is changed
class _Chain:
    start: int
    end: int
    event_ids: tuple[str, ...]


@dataclass(slots=True)
class _Group:
    # temporal: rule -> (time, event id) of its latest match
    latest: dict[str, tuple[int, str]] = field(default_factory=dict)
    # temporal_ordered: per step, the partial chain through it with the latest start
    chains: list[_Chain | None] = field(default_factory=list)
    newest: int = 0
    quiet_until: int | None = None
    host: str = ""

    def empty(self) -> bool:
        return not self.latest and not any(self.chains)


class TemporalCorrelation(WindowCorrelation[_Group]):
    """Reports groups in which the referenced rules matched within the timespan (module doc).

    `rules` are the reference keys in the order the correlation lists them.
    """

    def __init__(
        self,
        *,
        rules: tuple[str, ...],
        ordered: bool,
        group_by: tuple[str, ...],
        timespan_ns: int,
        threshold: Threshold | None = None,
        max_groups: int = DEFAULT_MAX_GROUPS,
        aliases: Aliases | None = None,
    ) -> None:
        if threshold is None:
            threshold = Threshold("gte", len(rules))
        if not rules:
            raise RuleError("temporal correlation references no rules")
        if threshold.op not in EAGER_OPS:
            raise RuleError(f"temporal condition must be gte or gt, not '{threshold.op}'")
        if ordered and threshold != Threshold("gte", len(rules)):
            raise RuleError("temporal_ordered takes no condition other than all rules in order")
        if not ordered and len(set(rules)) != len(rules):
            raise RuleError("temporal correlation lists a rule twice")
        if not ordered and not threshold.met(len(rules)):
            raise RuleError(f"condition can never hold with {len(rules)} rules")
        super().__init__(
            group_by=group_by,
            timespan_ns=timespan_ns,
            threshold=threshold,
            max_groups=max_groups,
            aliases=aliases,
        )
        self.rules = rules
        self._referenced = frozenset(rules)
        self.ordered = ordered
        self.kind = "temporal_ordered" if ordered else "temporal"

    def feed(
        self,
        time_ns: int,
        fields: Mapping[str, Any],
        rule_keys: Sequence[str] = (),
        keys: KeyCache | None = None,
    ) -> list[WindowHit]:
        """Record one event for each referenced rule it matched; return the hits completed."""
        referenced = self._referenced
        if len(rule_keys) == 1:
            matched: Sequence[str] = rule_keys if rule_keys[0] in referenced else ()
        else:
            matched = [r for r in dict.fromkeys(rule_keys) if r in referenced]
        if not matched:
            raise ValueError("temporal correlations must be told which referenced rules matched")
        event_id, host = origin(fields)
        if not self._key_by_rule:  # one key, whichever rule matched
            found = self._key(fields, (), keys)
            if found is None:
                self.ungrouped += 1
                return []
            hit = self._feed_group(found, time_ns, matched, event_id, host)
            return [] if hit is None else [hit]
        by_key: dict[GroupKey, list[str]] = {}
        for rule in matched:
            rule_key = self._key(fields, (rule,))
            if rule_key is not None:
                by_key.setdefault(rule_key, []).append(rule)
        hits: list[WindowHit] = []
        fed = False
        for key, rules in by_key.items():
            fed = True
            hit = self._feed_group(key, time_ns, rules, event_id, host)
            if hit is not None:
                hits.append(hit)
        if not fed:
            self.ungrouped += 1
        return hits

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), "rules": list(self.rules)}

    def _new_group(self) -> _Group:
        return _Group(chains=[None] * len(self.rules) if self.ordered else [])

    def _feed_group(
        self, key: GroupKey, t: int, rules: Collection[str], event_id: str, host: str
    ) -> WindowHit | None:
        group = self._groups.get(key)  # _group()'s usual case written out
        if group is None:
            group, _ = self._group(key)
        else:
            self._groups.move_to_end(key)
        if group.quiet_until is not None:
            if t <= group.quiet_until:
                self.suppressed += 1
                return None
            group.quiet_until = None
        if not group.latest and not any(group.chains):  # group.empty() written out
            group.newest = t
        elif t < group.newest - self.timespan_ns:
            self.late += 1
            return None
        elif t > group.newest:
            group.newest = t
        group.host = host or group.host
        if self.ordered:
            hit = self._chain(key, group, t, rules, event_id)
        else:
            hit = self._collect(key, group, t, rules, event_id)
        if hit is not None:
            group.quiet_until = group.newest + self.timespan_ns
            group.latest.clear()
            group.chains = [None] * len(group.chains)
        return hit

    def _collect(
        self, key: GroupKey, group: _Group, t: int, rules: Collection[str], event_id: str
    ) -> WindowHit | None:
        latest = group.latest
        for rule in rules:
            seen = latest.get(rule)
            if seen is None or t >= seen[0]:
                latest[rule] = (t, event_id)
        oldest = group.newest - self.timespan_ns
        stale = [r for r, (rt, _) in latest.items() if rt < oldest]
        for rule in stale:
            del latest[rule]
        if not self._met(len(latest)):
            return None
        seen_events = sorted(latest.values(), key=lambda e: e[0])
        return WindowHit(
            agent_id=key[0],
            host=group.host,
            group=self._group_values(key),
            first_ns=seen_events[0][0],
            last_ns=seen_events[-1][0],
            event_ids=list(dict.fromkeys(i for _, i in seen_events)),
            count=len(latest),
        )

    def _chain(
        self, key: GroupKey, group: _Group, t: int, rules: Collection[str], event_id: str
    ) -> WindowHit | None:
        chains = group.chains
        # Last step first, so one event never extends a chain it just started or extended.
        for step in reversed(range(len(self.rules))):
            if self.rules[step] not in rules:
                continue
            if step == 0:
                candidate = _Chain(t, t, (event_id,))
            else:
                prev = chains[step - 1]
                if prev is None or prev.end > t or t - prev.start > self.timespan_ns:
                    continue
                candidate = _Chain(prev.start, t, (*prev.event_ids, event_id)[-MAX_EVENT_IDS:])
            held = chains[step]
            if (
                held is None
                or candidate.start > held.start
                or (candidate.start == held.start and candidate.end < held.end)
            ):
                chains[step] = candidate
        done = chains[-1]
        if done is None:
            return None
        return WindowHit(
            agent_id=key[0],
            host=group.host,
            group=self._group_values(key),
            first_ns=done.start,
            last_ns=done.end,
            event_ids=list(done.event_ids),
            count=len(self.rules),
        )

    def _dump_group(self, group: _Group) -> dict[str, Any]:
        return {
            "latest": [[r, t, i] for r, (t, i) in group.latest.items()],
            "chains": [
                None if c is None else [c.start, c.end, list(c.event_ids)] for c in group.chains
            ],
            "newest": group.newest,
            "quiet_until": group.quiet_until,
            "host": group.host,
        }

    def _load_group(self, data: Mapping[str, Any]) -> _Group:
        latest: dict[str, tuple[int, str]] = {}
        for rule, *seen in data["latest"]:
            (latest[str(rule)],) = timed_ids([seen])
        chains = [
            None if c is None else _Chain(int(c[0]), int(c[1]), tuple(str(i) for i in c[2]))
            for c in data["chains"]
        ]
        if len(chains) != (len(self.rules) if self.ordered else 0):
            raise ValueError("chain steps do not match the rule")
        if any(r not in self.rules for r in latest):
            raise ValueError("state names a rule the correlation does not reference")
        return _Group(
            latest=latest,
            chains=chains,
            newest=int(data["newest"]),
            quiet_until=optional_int(data["quiet_until"]),
            host=str(data["host"]),
        )
