"""``torchzoo serve --ray``: the app of ``torchzoo serve`` (``create_app``) deployed as Ray Serve replicas,
each loading its own onnxruntime sessions, on a local Ray instance or a cluster joined with ``--address``.
The artifacts travel with the deployment (:mod:`torchzoo.serve_cli.shipped`): checked once here, shipped through
Ray's object store, checked again by each replica in a directory of its own; no replica reads ``--artifacts-dir``.
Serve's HTTP proxy listens on ``--host/--port``; every response names the node and replica that answered.

Ray is imported only here and only when ``--ray`` is given; nothing in this module imports torch."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchzoo.core.errors import TorchzooError, UserInputError, first_line
from torchzoo.serve_cli import shipped
from torchzoo.serve_cli.server.app import Models, ServeConfig, create_app
from torchzoo.serve_cli.server.run import (
    ServeTarget,
    bind,
    config_summary,
    load_models,
    load_or_refuse,
    model_directories,
    write_summary,
)

log = logging.getLogger("torchzoo.serve")
APP_NAME = "torchzoo"
DEPLOYMENT = "torchzoo"
NODE_HEADER = "x-torchzoo-node"
NODE_IP_HEADER = "x-torchzoo-node-ip"
REPLICA_HEADER = "x-torchzoo-replica"
RAY_INSTALL = "pip install 'torchzoo[ray,cpu]'"
PROXY_LOCATIONS = {"head": "HeadOnly", "every-node": "EveryNode"}
#: requests one replica takes at once: enough for its dynamic batcher to gather full batches
MAX_ONGOING_FACTOR = 2
CONNECT_SECONDS = 5
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"
INGRESS_SECONDS = 60
#: imported by Serve in its proxy, by this path (see there why Serve's default router is not used)
ROUTER = "torchzoo.serve_cli.server.ray_router.LessBusyOfTwo"


@dataclass(frozen=True)
class Scaling:
    """How many replicas: a fixed number, or autoscaling between ``minimum`` and ``maximum``."""

    replicas: int = 1
    minimum: int | None = None
    maximum: int | None = None

    @property
    def autoscaling(self) -> bool:
        return self.minimum is not None

    def describe(self) -> str:
        return (
            f"autoscaling {self.minimum}-{self.maximum} replicas" if self.autoscaling else f"{self.replicas} replicas"
        )


def scaling(replicas: int | None, autoscale: str | None) -> Scaling:
    """``--replicas N`` or ``--autoscale MIN:MAX`` (not both; 1 replica when neither), or a one-line error."""
    if replicas is not None and autoscale is not None:
        raise UserInputError("--replicas and --autoscale exclude each other: give one")
    if autoscale is None:
        return Scaling(replicas=1 if replicas is None else replicas)
    low, sep, high = autoscale.partition(":")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise UserInputError(f"--autoscale {autoscale}: expected MIN:MAX, two whole numbers such as 1:4")
    minimum, maximum = int(low), int(high)
    if maximum < 1:
        raise UserInputError(f"--autoscale {autoscale}: MAX must be at least 1")
    if minimum > maximum:
        raise UserInputError(f"--autoscale {autoscale}: MIN ({minimum}) is larger than MAX ({maximum})")
    return Scaling(minimum=minimum, maximum=maximum)


def require_ray() -> None:
    """A one-line error naming the extra when Ray Serve cannot be imported."""
    try:
        import ray.serve  # noqa: F401
    except ImportError as exc:
        raise UserInputError(f"--ray needs Ray Serve ({first_line(exc)}): {RAY_INSTALL}") from None


class NodeHeaders:
    """ASGI middleware: every HTTP response carries the node (id and IP) and the replica that made it."""

    def __init__(self, app: Callable[..., Awaitable[None]], headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: dict, receive: Callable, send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: what ships for one model: version -> the files of that version's artifact
ModelFiles = dict[str, shipped.Files]


def pack_models(served: Models) -> dict[str, ModelFiles]:
    """The files of every version the driver loaded, read and checked once more as they are packed (a file that
    changed since it was loaded is refused)."""
    return {
        name: {version: shipped.pack(predictor.directory) for version, predictor in versions.items()}
        for name, versions in served.items()
    }


def unpack_models(root: Path, models: dict[str, ModelFiles]) -> dict[str, Path]:
    """Each model's versions written under ``root`` in Triton's layout (``root/NAME/VERSION/``), which
    ``load_models`` reads as the same versions."""
    for name, versions in models.items():
        for version, files in versions.items():
            shipped.write(root / name / version, files)
    return {name: root / name for name in models}


class Replica:
    """One Serve replica: its own predictors (one onnxruntime session per model), loaded from the bytes the
    driver shipped, then the same ASGI app as ``torchzoo serve`` (Serve calls ``__serve_build_asgi_app__``
    after the constructor)."""

    def __init__(self, models: dict[str, Any], provider: str, config: ServeConfig) -> None:
        import ray
        from ray import serve

        node = ray.util.get_node_ip_address()
        received = {name: shipped.fetch(ref) for name, ref in models.items()}
        with shipped.unpacked() as root:
            served, refused = load_models(unpack_models(root, received), provider)
        if refused:  # the driver checked these bytes: what arrived here is not what was sent
            raise ArtifactOnNodeError("; ".join(f"{n} as shipped to {node}: {r}" for n, r in refused.items()))
        self.served = served
        self.config = config
        self.headers = {
            NODE_HEADER: ray.get_runtime_context().get_node_id(),
            NODE_IP_HEADER: node,
            REPLICA_HEADER: serve.get_replica_context().replica_id.unique_id,
        }

    def __serve_build_asgi_app__(self) -> NodeHeaders:
        return NodeHeaders(create_app(self.served, self.config), self.headers)


class ArtifactOnNodeError(TorchzooError):
    pass


def deployment_options(scale: Scaling, config: ServeConfig, replica_cpus: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": DEPLOYMENT,
        "ray_actor_options": {"num_cpus": replica_cpus},
        "max_ongoing_requests": MAX_ONGOING_FACTOR * config.max_batch,
        "logging_config": {"enable_access_log": False},  # the app writes its own, one JSON line a request
    }
    if not haproxy_ingress():  # HAProxy balances to the replicas itself (least connections) and refuses a router
        options["request_router_config"] = {"request_router_class": ROUTER}
    if scale.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": scale.minimum,
            "max_replicas": scale.maximum,
            "initial_replicas": max(scale.minimum or 0, 1),
            "target_ongoing_requests": max(2, config.max_batch // 2),
        }
    else:
        options["num_replicas"] = scale.replicas
    return options


def haproxy_ingress() -> bool:
    """Whether Serve's HAProxy ingress is on (``RAY_SERVE_ENABLE_HA_PROXY=1``, which must be in the environment of
    every node's ``ray start`` and of this command): HAProxy takes the HTTP port and sends each request straight to
    a replica's own HTTP server, instead of Serve's Python proxy and an actor call."""
    return os.environ.get(HAPROXY_ENV) == "1"


def _connect(address: str | None) -> None:
    """Start a local Ray instance of this process's own (never one that another process left running), or
    join the cluster at ``address``; an address nothing answers at is one line, not minutes of retries."""
    import ray

    if address is not None and address != "auto" and "://" not in address:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_SECONDS).close()
        except (OSError, ValueError) as exc:
            raise UserInputError(f"--address {address}: no Ray cluster answers there ({first_line(exc)})") from None
    try:
        # log_to_driver off: every replica's output (the JSON access log included) stays in Ray's log files on
        # its node; shipping it to this process cost ~1 ms of its CPU per request (measured under wrk)
        ray.init(address=address or "local", include_dashboard=False if address is None else None, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UserInputError(f"cannot start or join {where}: {first_line(exc)}") from None


def _running_replicas() -> int:
    from ray import serve

    status = serve.status().applications.get(APP_NAME)
    deployment = status.deployments.get(DEPLOYMENT) if status else None
    return int((deployment.replica_states or {}).get("RUNNING", 0)) if deployment else 0


def _alive_nodes() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


class Stop:
    """SIGINT/SIGTERM set the event; the main thread then shuts Serve down."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum
        self.event.set()

    def wait(self) -> None:
        while not self.event.wait(1.0):
            pass


def _deploy(app: Any, stop: Stop, timeout: float) -> None:
    """``serve.run`` (which waits until every replica is up) in a thread, so a signal or the deadline ends
    the wait: a replica that cannot be placed (too few CPUs) would otherwise wait for ever."""
    from ray import serve

    failure: list[BaseException] = []

    def deploy() -> None:
        try:
            serve.run(app, name=APP_NAME, route_prefix="/")
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    worker = threading.Thread(target=deploy, daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout
    while worker.is_alive() and not stop.event.is_set():
        if time.monotonic() > deadline:
            raise TorchzooError(f"the replicas were not running after {timeout:.0f} s: {_app_message()}")
        worker.join(0.2)
    if failure:
        raise TorchzooError(f"Ray Serve could not deploy the app: {first_line(failure[0])}")


def _app_message() -> str:
    from ray import serve

    try:
        status = serve.status().applications.get(APP_NAME)
    except Exception as exc:  # only for the message
        return first_line(exc)
    if status is None:
        return "the application was not created"
    details = [status.message] + [d.message for d in status.deployments.values()]
    return " ".join(" ".join(m.split()) for m in details if m) or str(status.status)


def _shutdown(started_here: bool) -> None:
    import ray
    from ray import serve

    try:
        serve.delete(APP_NAME)
        if started_here or not serve.status().applications:
            serve.shutdown()
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class RayOptions:
    """How ``serve --ray`` deploys: the replicas, the cluster to join (None: a local Ray instance of this
    process's own), where Serve's proxies run, the CPUs reserved per replica and how long to wait for them."""

    scale: Scaling = Scaling()
    address: str | None = None
    proxy_location: str = "head"
    replica_cpus: float = 1.0
    deploy_timeout: float = 300.0


def serve_on_ray(target: ServeTarget, options: RayOptions) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    require_ray()
    _check(target, options)
    directories = model_directories(target.names, target.root)
    if options.address is None:
        bind(target.host, target.port).close()  # the proxy will run here: a port in use is said before Ray starts
    served, refused = load_or_refuse(directories, target.provider)  # checked here once, so refusals are said once
    providers = {n: versions[max(versions, key=int)].provider for n, versions in served.items()}
    packed = pack_models(served)
    del served
    # Ray prints its workers' and raylets' output lines to the driver's sys.stdout: they go to stderr here,
    # so that stdout holds only the --json summary
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        _connect(options.address)
    except BaseException:
        sys.stdout = stdout
        raise
    stop = Stop()  # after ray.init, whose own handlers would print a stack trace on SIGTERM
    try:
        shipped.check_fits({name: sum(map(shipped.size, versions.values())) for name, versions in packed.items()})
        refs = {name: shipped.put(versions) for name, versions in packed.items()}
        del packed
        _start_and_deploy(target, options, refs, stop)
        if stop.event.is_set():
            return
        if target.as_json:
            write_summary(_summary(target, options, providers, refused), stdout)
        where = options.address or "local"
        log.info(f"serving {', '.join(providers)} on Ray Serve ({options.scale.describe()}, {where})")
        log.info(f"listening on {target.url} (Open Inference Protocol v2, KServe v1 :predict)")
        stop.wait()
        log.info(f"{signal.Signals(stop.signal or signal.SIGTERM).name}: shutting Ray Serve down")
    finally:
        _shutdown(started_here=options.address is None)
        sys.stdout = stdout


def _check(target: ServeTarget, options: RayOptions) -> None:
    if target.port == 0:
        raise UserInputError("--port 0 is not supported with --ray: Serve's proxy needs a fixed port")
    if options.proxy_location not in PROXY_LOCATIONS:
        raise UserInputError(f"--proxy-location {options.proxy_location}: choose {', '.join(PROXY_LOCATIONS)}")


def _start_and_deploy(target: ServeTarget, options: RayOptions, models: dict[str, Any], stop: Stop) -> None:
    from ray import serve

    http = {"host": target.host, "port": target.port}
    serve.start(proxy_location=PROXY_LOCATIONS[options.proxy_location], http_options=http)
    deployment = serve.deployment(serve.ingress()(Replica)).options(
        **deployment_options(options.scale, target.config, options.replica_cpus)
    )
    _deploy(deployment.bind(models, target.provider, target.config), stop, options.deploy_timeout)
    if haproxy_ingress():
        _wait_for_ingress(target, stop)


def _head_ip() -> str:
    import ray

    head = [n for n in ray.nodes() if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {})]
    return str(head[0]["NodeManagerAddress"]) if head else "127.0.0.1"


def _wait_for_ingress(target: ServeTarget, stop: Stop) -> None:
    """Until HAProxy on the head answers ready: it is configured with the replicas' addresses after ``serve.run``
    returns, and the start-up summary says the app is being served. A head it cannot reach from here (a command
    run on another node with a loopback --host) is a warning after INGRESS_SECONDS, not an error."""
    import urllib.request

    host = _head_ip() if target.host in ("0.0.0.0", "::", "") else target.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{target.port}/v2/health/ready"
    deadline = time.monotonic() + INGRESS_SECONDS
    while not stop.event.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    if not stop.event.is_set():
        log.warning(f"HAProxy did not answer {url} within {INGRESS_SECONDS} s of the deployment")


def _summary(
    target: ServeTarget, options: RayOptions, providers: dict[str, str], refused: dict[str, str]
) -> dict[str, Any]:
    return {
        "url": target.url,
        "ray": {
            "address": options.address or "local",
            "scaling": options.scale.describe(),
            "replicas_running": _running_replicas(),
            "nodes": _alive_nodes(),
        },
        "models": {n: {"provider": p} for n, p in providers.items()},
        "not_served": refused,
        **config_summary(target.config),
    }
