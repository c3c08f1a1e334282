"""The two references of the HTTP load test, served by uvicorn like ``torchzoo serve``: the floor (an empty
Starlette endpoint that reads the body) and the baseline a user would write (``json.loads`` the v2 tensor,
``session.run`` per request, the outputs back as JSON)."""

from __future__ import annotations

import json
import sys

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def floor_app() -> Starlette:
    async def infer(request: Request) -> Response:
        await request.body()
        return Response(b"{}", media_type="application/json")

    return Starlette(routes=[Route("/v2/models/{model}/infer", infer, methods=["POST"])])


def baseline_app(graph: str) -> Starlette:
    import onnxruntime as ort

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    async def infer(request: Request) -> Response:
        body = json.loads(await request.body())
        feeds = {t["name"]: np.asarray(t["data"], dtype=np.float32).reshape(t["shape"]) for t in body["inputs"]}
        outputs = session.run(None, {n: feeds[n] for n in names})
        return Response(json.dumps({"outputs": [{"data": o.ravel().tolist()} for o in outputs]}))

    return Starlette(routes=[Route("/v2/models/{model}/infer", infer, methods=["POST"])])


if __name__ == "__main__":
    import uvicorn

    kind, port = sys.argv[1], int(sys.argv[2])
    app = floor_app() if kind == "floor" else baseline_app(sys.argv[3])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
