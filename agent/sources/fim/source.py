"""The file-integrity source: a baseline of watched files, kept current by inotify."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from agent.sources.base import EventSink, Source, SourceContext
from canhgac.v1 import events_pb2

from .accounts import AccountNames
from .baseline import BaselineStore
from .changes import SOURCE_ID, Change, baseline_event, build_event
from .config import FimConfig
from .inotify import Inotify
from .roots import Scope, canonical, configured_roots, is_under
from .scanner import ByteBudget, FileProber, StopRequestedError, walk_files
from .settle import Pending, SettleQueue
from .tracker import BaselineTracker
from .watches import WatchTable, plan_watches

EMIT_CHUNK = 500
SCAN_CHUNK = 128  # paths per step of a walk; real-time checks run between steps
T = TypeVar("T")


class FileIntegritySource(Source):
    """Reports creation, modification, deletion, renaming, chmod and chown of watched files.

    Contract:
    * The baseline (sha256, size, mode, uid, gid, mtime, ctime, inode per path) lives in
      SQLite under `ctx.state_dir` (in memory when None). At start the paths are walked and
      compared with it, so changes made while the agent was down are reported. Roots the
      baseline has never covered (the first run) are recorded silently, with one
      "baseline_created" event whose labels give the file count.
    * inotify watches the directory roots and the parent of each file root; bursts on one
      path within `settle_ms` make one event. Queue overflow ("inotify_overflow") triggers a
      full rescan; directories beyond the kernel's watch limit ("watch_limit") are covered by
      the periodic rescan only (said in health.detail). Without inotify the source runs on
      the periodic rescan alone (health.mode "rescan").
    * The baseline is committed only after the events describing it are handed to the sink.
    * All reading and hashing runs in worker threads, hashing within `hash_bytes_per_second`.
    """

    source_id: ClassVar[str] = SOURCE_ID

    def __init__(
        self,
        config: FimConfig | None = None,
        *,
        etc_root: Path = Path("/etc"),
        budget: ByteBudget | None = None,
        inotify_factory: Callable[[], Inotify] | None = Inotify,
    ) -> None:
        super().__init__()
        self.config = config or FimConfig()
        self._etc_root = etc_root
        self._budget = budget or ByteBudget(self.config.hash_bytes_per_second)
        self._inotify_factory = inotify_factory  # None: periodic rescans only
        self._names = AccountNames(etc_root)
        self._stopping = threading.Event()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        settle = self.config.settle_ms / 1000
        self._pending = SettleQueue(settle)  # files to check
        self._pending_trees = SettleQueue(settle)  # directories to scan
        self._setup_queue: list[str] = []
        self._setup_wake = asyncio.Event()
        self._busy: set[asyncio.Future[Any]] = set()  # worker threads under way
        self._inotify: Inotify | None = None
        self._table: WatchTable | None = None
        self._no_inotify = ""
        self.scans_completed = 0  # full walks finished (the first is the start-up scan)
        self.health.mode = "inotify"

    async def run(self, ctx: SourceContext, sink: EventSink, stop: asyncio.Event) -> None:
        self._ctx, self._sink = ctx, sink
        self._store = await asyncio.to_thread(BaselineStore, ctx.state_dir)
        roots = await asyncio.to_thread(configured_roots, self.config, self._etc_root)
        self._scope = Scope(roots, self.config.exclude)
        prober = FileProber(self._budget, self.config.max_file_bytes, self._stopping)
        self._tracker = BaselineTracker(
            self._store, prober, self._scope, self.config.max_files, self.health.count_unparsed
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._relay_stop(stop))
                group.create_task(self._main(stop))
        finally:
            self._stopping.set()
            if self._busy:  # a thread cannot be cancelled: let it see `stopping` and end
                await asyncio.wait(self._busy)
            self._close_inotify()
            self._store.close()

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping.set()
        for event in (self._wake, self._rescan, self._setup_wake):
            event.set()

    async def _main(self, stop: asyncio.Event) -> None:
        try:
            self._open_inotify()
            for root in self._scope.roots:
                await self._setup(root)
            self.health.state = "running"
            self._update_detail()
            await self._full_scan(startup=True)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._process_loop(stop))
                group.create_task(self._rescan_loop(stop))
                group.create_task(self._setup_loop(stop))
        except* StopRequestedError:
            pass  # stopping in the middle of a hash or walk

    def request_rescan(self) -> None:
        """Walk every root again now (as after an inotify queue overflow)."""
        self._rescan.set()

    # -- inotify ---------------------------------------------------------------------------

    def _open_inotify(self) -> None:
        if self._inotify_factory is None:
            self._no_inotify = "inotify disabled"
        else:
            try:
                self._inotify = self._inotify_factory()
            except OSError as exc:
                self._no_inotify = f"inotify unavailable ({exc})"
        if self._inotify is None:
            self.health.mode = "rescan"
            return
        self._table = WatchTable(self._inotify, self._scope, self.health.count_unparsed)
        asyncio.get_running_loop().add_reader(self._inotify.fd, self._on_readable)

    def _close_inotify(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fd)
            self._inotify.close()

    def _on_readable(self) -> None:
        assert self._inotify is not None
        assert self._table is not None
        try:
            intents = self._table.translate(self._inotify.read())
        except ValueError:
            self.health.count_unparsed("inotify_bad_record")
            self._rescan.set()
            return
        if intents.overflow:
            self.health.count_unparsed("inotify_overflow")
            self._rescan.set()
        now, now_ns = asyncio.get_running_loop().time(), self._ctx.clock_ns()
        for path in intents.files:
            self._pending.touch(path, now, now_ns)
        for source, destination in intents.renames:
            self._pending.rename(source, destination)
        if intents.trees:
            self._setup_queue.extend(intents.trees)
            self._setup_wake.set()
        self._wake.set()

    async def _setup(self, path: str) -> None:
        """Watch what covers `path`: every root at or under it, or its subtree in a root."""
        if self._table is None:
            return
        for root in self._scope.roots:
            if is_under(root, path):
                target = root
            elif is_under(path, root):
                target = path
            else:
                continue
            planned = await asyncio.to_thread(plan_watches, target, root, self._scope)
            self._table.add(planned)
        self._update_detail()

    async def _setup_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._setup_wake.wait()
            self._setup_wake.clear()
            while self._setup_queue and not stop.is_set():
                path = self._setup_queue.pop(0)
                await self._setup(path)
                loop = asyncio.get_running_loop()
                self._pending_trees.touch(path, loop.time(), self._ctx.clock_ns())
                self._wake.set()

    def _update_detail(self) -> None:
        parts = [self._no_inotify] if self._no_inotify else []
        if self._table is not None and self._table.limited:
            limited = ", ".join(sorted(self._table.limited)[:5])
            parts.append(
                "inotify watch limit reached (raise fs.inotify.max_user_watches); "
                f"checked by the rescan every {self.config.rescan_interval_s}s only: {limited}"
            )
        self.health.detail = "; ".join(parts)

    # -- real-time checks ------------------------------------------------------------------

    async def _process_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            deadlines = [self._pending.next_deadline(), self._pending_trees.next_deadline()]
            soonest = min((d for d in deadlines if d is not None), default=None)
            timeout = None if soonest is None else max(0.0, soonest - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = loop.time()
            files, renames = self._pending.take_ready(now)
            trees, _ = self._pending_trees.take_ready(now)
            if files or trees:
                await self._check(files, renames, list(trees))

    async def _check(
        self, files: dict[str, Pending], renames: dict[str, str], trees: list[str]
    ) -> None:
        def work() -> list[Change]:
            self._names.refresh()
            out: list[Change] = []
            done: set[str] = set()
            for destination, source in renames.items():
                out.extend(self._tracker.check(destination, renamed_from=source))
                done.update((destination, source))
            for path in files:
                if path not in done:
                    out.extend(self._tracker.check(path))
            for tree in trees:
                generation = self._tracker.new_generation()
                out.extend(self._scan_tree(tree, generation))
                out.extend(self._tracker.sweep(generation, under=tree))
            return out

        async with self._lock:
            changes = await self._in_thread(work)
            await self._emit(changes, {p: v.time_ns for p, v in files.items()})
        passwd = canonical(str(self._etc_root / "passwd"))
        if self.config.home_authorized_keys and any(c.path == passwd for c in changes):
            await self._refresh_roots()

    def _scan_tree(self, tree: str, generation: int) -> list[Change]:
        """Scan `tree`: the roots inside it (it leads to them), or itself inside a root."""
        targets = [r for r in self._scope.roots if is_under(r, tree)]
        if not targets and self._scope.root_of(tree) is not None:
            targets = [tree]
        changes: list[Change] = []
        for target in targets:
            paths = walk_files(target, self._scope, self.health.count_unparsed)
            changes.extend(self._tracker.scan(paths, generation, silent=False))
        return changes

    # -- full scans ------------------------------------------------------------------------

    async def _rescan_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), self.config.rescan_interval_s)
            self._rescan.clear()
            if not stop.is_set():
                await self._full_scan(startup=False)

    async def _full_scan(self, *, startup: bool) -> None:
        """Walk every root in steps, then settle what the walk did not meet. At start, roots
        the baseline has never covered are recorded silently."""
        if not startup:
            await self._refresh_roots()
            if self._table is not None:
                for path in list(self._table.limited):
                    self._table.limited.discard(path)
                    await self._setup(path)
        known = await self._in_thread(self._store.roots) if startup else set()
        silent = {r for r in self._scope.roots if r not in known} if startup else set()
        self._tracker.recorded_silently = 0
        generation = await self._in_thread(self._tracker.new_generation)
        walk = (
            (root, path)
            for root in list(self._scope.roots)
            for path in walk_files(root, self._scope, self.health.count_unparsed)
        )
        while True:
            step = await self._in_thread(_take, walk, SCAN_CHUNK)
            if not step:
                break
            async with self._lock:
                changes: list[Change] = []
                for root, group in itertools.groupby(step, key=lambda item: item[0]):
                    paths = [p for _, p in group]
                    changes.extend(
                        await self._in_thread(self._tracker.scan, paths, generation, root in silent)
                    )
                await self._emit(changes, {})
        async with self._lock:
            changes = await self._in_thread(self._tracker.sweep, generation)
            if startup:
                await self._in_thread(self._record_roots)
            await self._emit(changes, {})
            if silent:
                now = self._ctx.clock_ns()
                await self._emit_events(
                    [
                        baseline_event(
                            self._tracker.recorded_silently,
                            len(silent),
                            time_ns=now,
                            created_ns=now,
                            agent_id=self._ctx.agent_id,
                            host=self._ctx.host,
                        )
                    ]
                )
        self.scans_completed += 1

    def _record_roots(self) -> None:
        for root in self._store.roots() - set(self._scope.roots):
            self._store.remove_root(root)
        for root in self._scope.roots:
            self._store.add_root(root)

    async def _refresh_roots(self) -> None:
        """Pick up roots that appeared (a new login user's authorized_keys): watched and
        scanned at once, reported as created (never silent)."""
        roots = await asyncio.to_thread(configured_roots, self.config, self._etc_root)
        added = [r for r in roots if r not in self._scope.roots]
        self._scope.roots = roots  # swapped whole: worker threads read it
        for root in added:
            await self._setup(root)
            loop = asyncio.get_running_loop()
            self._pending_trees.touch(root, loop.time(), self._ctx.clock_ns())
        if added:
            async with self._lock:
                await self._in_thread(self._record_roots)
                await self._in_thread(self._store.commit)
            self._wake.set()

    # -- output ----------------------------------------------------------------------------

    async def _emit(self, changes: list[Change], times: dict[str, int]) -> None:
        now = self._ctx.clock_ns()
        events = [
            build_event(
                change,
                time_ns=times.get(change.path, now),
                created_ns=now,
                agent_id=self._ctx.agent_id,
                host=self._ctx.host,
                user_name=self._names.user,
                group_name=self._names.group,
            )
            for change in changes
        ]
        await self._emit_events(events)

    async def _emit_events(self, events: list[events_pb2.Event]) -> None:
        for start in range(0, len(events), EMIT_CHUNK):
            await self._sink.emit(events[start : start + EMIT_CHUNK])
        self.health.events += len(events)
        # Only now is the baseline moved forward: a crash before repeats, never loses, events.
        await self._in_thread(self._store.commit)

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run blocking work in a thread, awaited again on shutdown if cancelled meanwhile."""
        future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._busy.add(future)
        future.add_done_callback(self._busy.discard)
        return await asyncio.shield(future)


def _take(items: Iterator[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    return list(itertools.islice(items, n))
