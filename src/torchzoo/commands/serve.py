"""``torchzoo serve``: the exported models over HTTP (Open Inference Protocol v2 and KServe v1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from torchzoo.options import ArtifactsDir, JsonFlag, ProviderOpt


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        models: Annotated[
            list[str] | None, typer.Argument(help="Model names under the artifact root, or 'all'.")
        ] = None,
        artifacts_dir: ArtifactsDir = None,
        host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless told otherwise.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
        provider: ProviderOpt = "auto",
        max_batch: Annotated[
            int, typer.Option(min=1, help="Most samples in one batched run (1: every request runs alone).")
        ] = 64,
        max_delay_ms: Annotated[
            float, typer.Option(min=0.0, help="How long a batch may wait for requests still being read.")
        ] = 2.0,
        max_body_bytes: Annotated[int, typer.Option(min=1024, help="Larger request bodies get 413.")] = 8 << 20,
        token: Annotated[
            str | None, typer.Option(help="Bearer token for every endpoint but live/ready (or $TORCHZOO_TOKEN).")
        ] = None,
        static: Annotated[Path | None, typer.Option(help="A directory of static files served at /static/.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Serve exported models over HTTP: Open Inference Protocol v2 (JSON and binary tensors), KServe v1
        raw inputs, /metrics; dynamic batching; SIGTERM drains requests in flight."""
        from torchzoo.core.errors import UserInputError
        from torchzoo.core.paths import artifacts_root
        from torchzoo.serve_cli.server.app import ServeConfig
        from torchzoo.serve_cli.server.run import serve as run_server

        if static is not None and not static.is_dir():
            raise UserInputError(f"--static {static}: not a directory")
        config = ServeConfig(
            max_batch=max_batch,
            max_delay_ms=max_delay_ms,
            max_body_bytes=max_body_bytes,
            token=token or os.environ.get("TORCHZOO_TOKEN") or None,
            static_dir=static,
        )
        run_server(models or [], artifacts_root(artifacts_dir), host, port, provider, config, as_json)
