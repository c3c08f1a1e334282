"""Dynamic batching: concurrent requests for one model are gathered into one onnxruntime run.

A request that finds nothing of its model running, queued or on its way runs at once, alone, in a
worker thread. Requests that come while a run is in progress are queued; a worker per model takes
them all (up to ``max_batch`` samples; a larger request runs alone) and runs them as one batch, so
batches grow with the load. Before running, the worker waits for more (at most ``max_delay`` seconds)
only while other requests for the model have been accepted and are still being read or decoded
(:meth:`Batcher.arriving`): a request is never held back waiting for company that is not coming.
Requests whose inputs do not stack (another trailing shape, such as a name of another length) run in
separate batches. Every request gets its own rows of the outputs; a failed run is repeated request by
request, so one request's failure is its own. With ``max_batch=1`` every request
runs alone as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

Run = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass
class _Pending:
    arrays: tuple[np.ndarray, ...]
    future: asyncio.Future = field(repr=False)
    queued_ns: int = field(default_factory=time.perf_counter_ns)

    @property
    def samples(self) -> int:
        return int(self.arrays[0].shape[0])

    @property
    def key(self) -> tuple[tuple[tuple[int, ...], np.dtype], ...]:
        return tuple((a.shape[1:], a.dtype) for a in self.arrays)


class Batcher:
    def __init__(
        self,
        run: Run,
        max_batch: int,
        max_delay: float,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
        on_run: Callable[[int, int], None] | None = None,
        on_wait: Callable[[int], None] | None = None,
    ) -> None:
        """``on_batch(samples)`` before each run, ``on_queue(depth)`` as the queue changes, ``on_run(samples, ns)``
        after each run that succeeded, ``on_wait(ns)`` for each queued request as its run starts."""
        self.run_fn, self.max_batch, self.max_delay = run, max_batch, max_delay
        self.on_batch = on_batch or (lambda size: None)
        self.on_queue = on_queue or (lambda depth: None)
        self.on_run = on_run or (lambda samples, ns: None)
        self.on_wait = on_wait or (lambda ns: None)
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.worker: asyncio.Task | None = None
        self.busy = False  # the worker holds requests taken off the queue
        self.carry: _Pending | None = None  # taken off the queue, too big for the batch being gathered
        self.incoming = 0  # requests accepted for this model and not yet queued
        self.direct = 0  # lone requests running without the worker

    def start(self) -> None:
        if self.max_batch > 1 and self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Finish what is queued and the batch being run, then stop the worker."""
        if self.worker is not None:
            while not self.queue.empty() or self.busy or self.carry is not None:
                await asyncio.sleep(0.005)
            self.worker.cancel()
            self.worker = None

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Around reading and decoding a request: while any is inside, a gathering batch may wait for it."""
        self.incoming += 1
        try:
            yield
        finally:
            self.incoming -= 1

    async def run(self, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        if self.max_batch <= 1 or self.worker is None:  # unbatched, or stopped (a retired version): alone
            return await self._execute(arrays)
        if self._alone():  # no one to share a run with: no hop through the worker
            self.direct += 1
            try:
                return await self._execute(arrays)
            finally:
                self.direct -= 1
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Pending(arrays, future))
        self.on_queue(self.queue.qsize())
        return await future

    async def _execute(self, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """One run in a worker thread, counted and timed."""
        samples = int(arrays[0].shape[0])
        self.on_batch(samples)
        start = time.perf_counter_ns()
        outputs = await asyncio.to_thread(self.run_fn, arrays)
        self.on_run(samples, time.perf_counter_ns() - start)
        return outputs

    def _alone(self) -> bool:
        """Nothing running, queued, gathering or on its way (the hop through the worker costs a lone
        request ~65 us, measured in process)."""
        idle = not self.busy and self.direct == 0 and self.carry is None
        return idle and self.incoming == 0 and self.queue.empty()

    async def _gather(self) -> list[_Pending]:
        loop = asyncio.get_running_loop()
        first, self.carry = self.carry or await self.queue.get(), None
        self.busy = True
        pending, samples = [first], first.samples
        deadline = loop.time() + self.max_delay
        while samples < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if self.incoming == 0 or remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if samples + item.samples > self.max_batch:
                self.carry = item  # it starts the next batch
                break
            pending.append(item)
            samples += item.samples
        self.on_queue(self.queue.qsize())
        return pending

    async def _work(self) -> None:
        while True:
            pending = await self._gather()
            groups: dict[tuple, list[_Pending]] = defaultdict(list)
            for item in pending:
                groups[item.key].append(item)
            for group in groups.values():
                await self._run_group(group)
            self.busy = False

    async def _run_group(self, group: list[_Pending]) -> None:
        """One run for the group. When it fails and holds several requests, each is run again alone, so that
        one request whose rows fail (an output that is no answer) fails by itself, never its batch-mates."""
        now = time.perf_counter_ns()
        for item in group:
            self.on_wait(now - item.queued_ns)
            item.queued_ns = now  # run again alone after a failure, it has waited no longer
        try:
            stacked = tuple(np.concatenate([p.arrays[i] for p in group]) for i in range(len(group[0].arrays)))
            outputs = await self._execute(stacked)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exception=exc)
            else:
                for item in group:
                    await self._run_group([item])
            return
        start = 0
        for item in group:
            stop = start + item.samples
            _settle(item, result=[out[start:stop] for out in outputs])
            start = stop


def _settle(item: _Pending, result: list[np.ndarray] | None = None, exception: Exception | None = None) -> None:
    """Answer a request, unless its client has gone (its future was cancelled)."""
    if item.future.done():
        return
    if exception is not None:
        item.future.set_exception(exception)
    else:
        item.future.set_result(result)
