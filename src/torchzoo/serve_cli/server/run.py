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

from torchzoo.core import session as sessions
from torchzoo.core.errors import TorchzooError, UserInputError
from torchzoo.serve_cli.predictor import Predictor
from torchzoo.serve_cli.server.app import Models, ServeConfig, create_app
from torchzoo.serve_cli.server.heads import BoundedHttpToolsProtocol
from torchzoo.serve_cli.server.protocol import ProtocolError
from torchzoo.serve_cli.server.repository import load_versions, version_directories

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


def load_or_refuse(directories: dict[str, Path], provider: str) -> tuple[Models, dict[str, str]]:
    """:func:`load_models`, each refusal logged; no model at all is a one-line UserInputError."""
    served, refused = load_models(directories, provider)
    for name, reason in refused.items():
        log.warning(f"not serving {name}: {reason}")
    if not served and directories:
        raise UserInputError("no model could be served: " + "; ".join(f"{n}: {r}" for n, r in refused.items()))
    return served, refused


def write_summary(summary: dict[str, Any], stream: Any) -> None:
    """The start-up summary, one JSON line (``--json``)."""
    stream.write(json.dumps(summary) + "\n")
    stream.flush()


def model_directories(names: list[str], root: Path, control: str = "none") -> dict[str, Path]:
    """``all`` (or nothing, unless model control is explicit): every model directory under ``root`` (an
    artifact, or Triton's layout of version directories); else the ones named."""
    if names == [] and control == "explicit":  # explicit control starts with what it is told to load
        return {}
    if not names or names == ["all"]:
        found = {p.name: p for p in sorted(root.glob("*")) if version_directories(p)}
        if not found:
            raise UserInputError(f"no exported models under {root}; run 'torchzoo export all' first")
        return found
    return {name: root / name for name in names}


def load_models(directories: dict[str, Path], provider: str) -> tuple[Models, dict[str, str]]:
    """Every version of each model, verified and warmed up; a model that fails is refused with the reason."""
    sessions.ALLOW_SPINNING = False  # see there: idle spinning between requests starves the event loop
    served: Models = {}
    refused: dict[str, str] = {}
    for name, directory in directories.items():
        try:
            served[name] = load_versions(directory, provider)
        except (TorchzooError, ProtocolError) as exc:
            refused[name] = str(exc)
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
    directories = model_directories(target.names, target.root, target.config.model_control)
    sock = bind(target.host, target.port)  # before loading: a port in use is said at once
    target = replace(target, port=sock.getsockname()[1])
    if target.config.grpc_address is not None:
        host, _, grpc_port = target.config.grpc_address.rpartition(":")
        bind(host.strip("[]"), int(grpc_port)).close()  # the gRPC server binds it once the app starts
    served, refused = load_or_refuse(directories, target.provider)
    if target.as_json:
        models = {n: _described(versions) for n, versions in served.items()}
        write_summary(
            {"url": target.url, "models": models, "not_served": refused, **config_summary(target.config)}, sys.stdout
        )
    for name, versions in served.items():
        described = _described(versions)
        notice = f" ({described['notice']})" if described["notice"] else ""
        shown = f" (versions {', '.join(versions)})" if list(versions) != ["1"] else ""
        log.info(f"serving {name}{shown} on provider {described['provider']}{notice}")
    log.info(f"listening on {target.url} (Open Inference Protocol v2, KServe v1 :predict)")
    if target.config.grpc_address is not None:
        log.info(f"gRPC on {target.config.grpc_address} (inference.GRPCInferenceService)")
    if target.config.token is None and not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        log.warning(
            f"{target.host} is reachable from other machines and no --token is set: anyone there can use the models"
        )
    app = create_app(served, target.config, target.root, target.provider)
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


def _described(versions: dict[str, Predictor]) -> dict[str, Any]:
    """What the start-up summary says of a model: its latest version's provider and notice."""
    latest = versions[max(versions, key=int)]
    return {"provider": latest.provider, "notice": latest.notice}
