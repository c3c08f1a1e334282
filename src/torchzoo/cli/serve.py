"""``torchzoo serve``: the exported models over HTTP (Open Inference Protocol v2 and KServe v1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from torchzoo.cli.options import ArtifactsDir, JsonFlag, ProviderOpt, choice

#: --model-control's choices (serve_cli/server/repository.py says what explicit allows)
CONTROL_MODES = ("none", "explicit")

Models = Annotated[list[str] | None, typer.Argument(help="Model names under the artifact root, or 'all'.")]
Host = Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless told otherwise.")]
Port = Annotated[int, typer.Option(min=0, max=65535)]
MaxBatch = Annotated[int, typer.Option(min=1, help="Most samples in one batched run (1: every request runs alone).")]
MaxDelayMs = Annotated[float, typer.Option(min=0.0, help="How long a batch may wait for requests still being read.")]
MaxBodyBytes = Annotated[int, typer.Option(min=1024, help="Larger request bodies get 413.")]
Token = Annotated[str | None, typer.Option(help="Bearer token for every endpoint but live/ready (or $TORCHZOO_TOKEN).")]
GrpcPort = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Also serve the gRPC Open Inference Protocol on this port.")
]
CorsOrigin = Annotated[
    list[str] | None,
    typer.Option(
        "--cors-origin", help="Let a browser app from this origin call the server (repeat for more; '*': any)."
    ),
]
ModelControl = Annotated[
    str,
    typer.Option(
        parser=choice(CONTROL_MODES),
        metavar="[" + "|".join(CONTROL_MODES) + "]",
        help="explicit: load, reload and unload models at run time (POST /v2/repository/models/NAME/load).",
    ),
]
Static = Annotated[Path | None, typer.Option(help="A directory of static files served at /static/.")]
Ray = Annotated[bool, typer.Option("--ray", help="Deploy the same app as Ray Serve replicas (the ray extra).")]
Replicas = Annotated[int | None, typer.Option(min=1, help="With --ray: this many replicas (default 1).")]
Autoscale = Annotated[
    str | None, typer.Option(metavar="MIN:MAX", help="With --ray: Serve autoscales between MIN and MAX.")
]
Address = Annotated[str | None, typer.Option(help="With --ray: join this Ray cluster (e.g. 'auto', 'HOST:6379').")]
ReplicaCpus = Annotated[float, typer.Option(min=0.01, help="With --ray: CPUs Ray reserves per replica.")]
ProxyLocation = Annotated[
    str, typer.Option(help="With --ray: Serve's HTTP proxy on the head node, or on every node (head|every-node).")
]
DeployTimeout = Annotated[
    float, typer.Option(min=1.0, help="With --ray: seconds to wait for every replica to be running.")
]


def serve(
    models: Models = None,
    artifacts_dir: ArtifactsDir = None,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    provider: ProviderOpt = "auto",
    max_batch: MaxBatch = 64,
    max_delay_ms: MaxDelayMs = 2.0,
    max_body_bytes: MaxBodyBytes = 8 << 20,
    token: Token = None,
    grpc_port: GrpcPort = None,
    cors_origin: CorsOrigin = None,
    model_control: ModelControl = "none",
    static: Static = None,
    ray: Ray = False,
    replicas: Replicas = None,
    autoscale: Autoscale = None,
    address: Address = None,
    replica_cpus: ReplicaCpus = 1.0,
    proxy_location: ProxyLocation = "head",
    deploy_timeout: DeployTimeout = 300.0,
    as_json: JsonFlag = False,
) -> None:
    """Serve exported models over HTTP: Open Inference Protocol v2 (JSON and binary tensors), KServe v1
    raw inputs, /metrics; dynamic batching; SIGTERM drains requests in flight. --ray: the same app as Ray Serve
    replicas, on a local Ray instance or the cluster at --address."""
    from torchzoo.core.errors import UserInputError
    from torchzoo.core.paths import artifacts_root
    from torchzoo.serve_cli.server.app import ServeConfig
    from torchzoo.serve_cli.server.run import ServeTarget
    from torchzoo.serve_cli.server.run import serve as run_server

    if ray and (grpc_port is not None or model_control != "none"):
        raise UserInputError("--grpc-port and --model-control explicit are not served with --ray")
    ray_only = {"--replicas": replicas, "--autoscale": autoscale, "--address": address}
    if not ray and any(v is not None for v in ray_only.values()):
        given = [k for k, v in ray_only.items() if v is not None]
        raise UserInputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} only used with --ray")
    if static is not None and not static.is_dir():
        raise UserInputError(f"--static {static}: not a directory")
    config = ServeConfig(
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        max_body_bytes=max_body_bytes,
        token=token or os.environ.get("TORCHZOO_TOKEN") or None,
        static_dir=static,
        cors_origins=tuple(cors_origin or ()),
        model_control=model_control,
        grpc_address=None if grpc_port is None else (f"[{host}]:{grpc_port}" if ":" in host else f"{host}:{grpc_port}"),
    )
    target = ServeTarget(models or [], artifacts_root(artifacts_dir), host, port, provider, config, as_json)
    if not ray:
        run_server(target)
        return
    from torchzoo.serve_cli.server import ray_deploy

    options = ray_deploy.RayOptions(
        ray_deploy.scaling(replicas, autoscale), address, proxy_location, replica_cpus, deploy_timeout
    )
    ray_deploy.require_ray()
    ray_deploy.serve_on_ray(target, options)
