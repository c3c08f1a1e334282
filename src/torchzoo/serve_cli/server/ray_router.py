"""The request router of ``torchzoo serve --ray``: Serve's power of two choices (the less busy of two
replicas drawn at random) over every replica, wherever it runs.

Serve's default router first offers a request to the replicas on the proxy's own node, so behind one
proxy the head node's replica took every request until it was full (measured on a two-node cluster:
20 of 20 sequential requests on one replica, the other node idle). Ray imports this module by its path
in the proxy; it imports Ray at the top, so nothing but Ray's own processes imports it."""

from __future__ import annotations

import random

from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica


class LessBusyOfTwo(FIFOMixin, RequestRouter):
    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # both full: back off before drawing again
        return [random.sample(candidate_replicas, min(2, len(candidate_replicas)))]
