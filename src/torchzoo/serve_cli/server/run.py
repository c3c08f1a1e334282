"""Start ``torchzoo serve``: load, verify and warm up each model (a model that fails is not served, and
the log says why), then run the app under uvicorn. SIGTERM stops accepting connections and lets the
requests in flight finish before the process exits."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from torchzoo.core import session as sessions
from torchzoo.core.artifact import MANIFEST
from torchzoo.core.errors import TorchzooError, UserInputError, first_line
from torchzoo.serve_cli.predictor import Predictor, load
from torchzoo.serve_cli.server.app import ServeConfig, create_app
from torchzoo.serve_cli.server.heads import BoundedHttpToolsProtocol

log = logging.getLogger("torchzoo.serve")
GRACEFUL_SECONDS = 30


@dataclass(frozen=True)
class ServeTarget:
    """What ``torchzoo serve`` serves and where: the models (names, or ``all``) under the artifact root, the
    address, the onnxruntime provider, the app's settings, and whether the start-up summary is JSON."""

    names: list[str]
    root: Path
    host: str = "127.0.0.1"
    port: int = 8000
    provider: str = "auto"
    config: ServeConfig = field(default_factory=ServeConfig)
    as_json: bool = False

    @property
    def url(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"


def load_or_refuse(directories: dict[str, Path], provider: str) -> tuple[dict[str, Predictor], dict[str, str]]:
    """:func:`load_models`, each refusal logged; no model at all is a one-line UserInputError."""
    served, refused = load_models(directories, provider)
    for name, reason in refused.items():
        log.warning(f"not serving {name}: {reason}")
    if not served:
        raise UserInputError("no model could be served: " + "; ".join(f"{n}: {r}" for n, r in refused.items()))
    return served, refused


def write_summary(summary: dict[str, Any], stream: Any) -> None:
    """The start-up summary, one JSON line (``--json``)."""
    stream.write(json.dumps(summary) + "\n")
    stream.flush()


def model_directories(names: list[str], root: Path) -> dict[str, Path]:
    """``all`` (or nothing): every directory under ``root`` with a manifest; else the ones named."""
    if not names or names == ["all"]:
        found = {p.name: p for p in sorted(root.glob("*")) if (p / MANIFEST).is_file()}
        if not found:
            raise UserInputError(f"no exported models under {root}; run 'torchzoo export all' first")
        return found
    return {name: root / name for name in names}


def warm_up(predictor: Predictor) -> None:
    """One run on zeros of a valid shape (dynamic axes at 1), so the first request pays no set-up cost."""
    dtypes = {"float32": np.float32, "float64": np.float64}
    arrays = [
        np.zeros(
            [1 if isinstance(d, str) else int(d) for d in spec["shape"]], dtypes.get(spec.get("dtype"), np.float32)
        )
        for spec in predictor.manifest["inputs"]
    ]
    predictor.run(arrays)


def load_models(directories: dict[str, Path], provider: str) -> tuple[dict[str, Predictor], dict[str, str]]:
    sessions.ALLOW_SPINNING = False  # see there: idle spinning between requests starves the event loop
    served: dict[str, Predictor] = {}
    refused: dict[str, str] = {}
    for name, directory in directories.items():
        try:
            predictor = load(directory, provider)
            warm_up(predictor)
        except TorchzooError as exc:
            refused[name] = str(exc)
            continue
        except Exception as exc:  # a graph that cannot even be warmed up is not served either
            refused[name] = first_line(exc)
            continue
        served[name] = predictor
    return served, refused


def config_summary(config: ServeConfig) -> dict[str, Any]:
    """The serving settings the start-up line reports (plain and Ray Serve alike)."""
    return {
        "max_batch": config.max_batch,
        "max_delay_ms": config.max_delay_ms,
        "max_body_bytes": config.max_body_bytes,
        "auth": config.token is not None,
        "grpc": config.grpc_address,
    }


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening: uvicorn listens once the app has started), or a
    one-line UserInputError (an unknown host, a port in use or not allowed). Port 0 takes a free port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UserInputError(f"--host {host}: {getattr(exc, 'strerror', None) or exc}") from None
    # proto (IPPROTO_TCP) matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response's second write waits for the client's delayed ACK (40 ms a request, measured)
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(target: ServeTarget) -> None:
    import uvicorn

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    directories = model_directories(target.names, target.root)
    sock = bind(target.host, target.port)  # before loading: a port in use is said at once
    target = replace(target, port=sock.getsockname()[1])
    if target.config.grpc_address is not None:
        host, _, grpc_port = target.config.grpc_address.rpartition(":")
        bind(host.strip("[]"), int(grpc_port)).close()  # the gRPC server binds it once the app starts
    served, refused = load_or_refuse(directories, target.provider)
    if target.as_json:
        models = {n: {"provider": p.provider, "notice": p.notice} for n, p in served.items()}
        write_summary(
            {"url": target.url, "models": models, "not_served": refused, **config_summary(target.config)}, sys.stdout
        )
    for name, predictor in served.items():
        notice = f" ({predictor.notice})" if predictor.notice else ""
        log.info(f"serving {name} on provider {predictor.provider}{notice}")
    log.info(f"listening on {target.url} (Open Inference Protocol v2, KServe v1 :predict)")
    if target.config.grpc_address is not None:
        log.info(f"gRPC on {target.config.grpc_address} (inference.GRPCInferenceService)")
    if target.config.token is None and not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        log.warning(
            f"{target.host} is reachable from other machines and no --token is set: anyone there can use the models"
        )
    app = create_app(served, target.config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=BoundedHttpToolsProtocol,  # request line and headers bounded while they arrive
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
    )
    server.run(sockets=[sock])
