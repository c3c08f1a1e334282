"""Test support: hosts that share nothing, made on this machine with Linux namespaces (root, ``ip``, ``unshare``,
``nsenter``), and a Ray cluster across them. docs/scale-out.md shows the same commands, to make one by hand.

Each :class:`Host` is

- a network namespace ``<prefix>-<name>`` with its own loopback and one veth pair into a bridge in the root
  namespace; the host's address is on a /24 of 10.213.0.0/16 used only by these namespaces (the bridge holds
  ``.254`` so this process can reach them; nothing forwards or routes further);
- a mount namespace, held by an anchor process (``sleep``), with tmpfs over ``/tmp/ray`` (its own Ray session
  directory) and ``/dev/shm`` (its own object store files), and on the worker hosts over every ``hidden`` path
  (the artifact root, the test's inputs): what the head sees there is not visible on a worker.

:func:`ray_cluster` starts ``ray start --head`` on the first host (no CPUs: no replica or actor is placed there)
and ``ray start --address`` on the others; commands run on a host through ``nsenter`` into both namespaces.
Teardown SIGKILLs every process in each namespace (never ``ray stop``, which would stop every Ray on the
machine), then deletes the namespaces and the bridge.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NEEDS = ("ip", "unshare", "nsenter")
RAY_PORT = 6379
#: small object stores: three nodes share this machine's memory
OBJECT_STORE_BYTES = 100 * 1024 * 1024
START_TIMEOUT = 120


def require_namespaces() -> None:
    """The fixture's prerequisites, or an error that says what to install (a test never skips)."""
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"the namespace hosts need {', '.join(missing)}: apt-get install -y iproute2 util-linux")
    if os.geteuid() != 0:
        raise RuntimeError("the namespace hosts need root (network and mount namespaces)")


def sh(
    *argv: str, check: bool = True, input: bytes | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env or ray_env())
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode(errors="replace")


@dataclass
class Host:
    name: str
    netns: str
    address: str
    anchor: subprocess.Popen | None = None
    #: what this host's Ray processes and commands run with besides :func:`ray_env` (set by :func:`start_ray`)
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's network and mount namespaces."""
        assert self.anchor is not None
        return ["nsenter", "-t", str(self.anchor.pid), "-n", "-m", "--", *argv]

    def run(self, *argv: str, input: bytes | None = None, timeout: float = 120, check: bool = True) -> str:
        return sh(*self.command(*argv), input=input, timeout=timeout, check=check, env=ray_env(**self.env))

    def popen(self, *argv: str, **kwargs: object) -> subprocess.Popen:
        return subprocess.Popen(self.command(*argv), **{"env": ray_env(**self.env), **kwargs})

    def pids(self) -> list[int]:
        """Every process in this host's network namespace (Ray's daemons, workers, the anchor)."""
        return [int(p) for p in sh("ip", "netns", "pids", self.netns, check=False).split()]

    def kill(self, keep_anchor: bool = True) -> list[int]:
        """SIGKILL every process on the host (its Ray daemons and workers): the host is lost. Returns the pids."""
        kept = {self.anchor.pid} if keep_anchor and self.anchor else set()
        killed = [p for p in self.pids() if p not in kept]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while set(self.pids()) - kept and time.monotonic() < deadline:  # killed processes still exiting
            time.sleep(0.1)
        return killed

    def write(self, path: Path, data: bytes) -> None:
        """Write a file on this host only (inside its mount namespace)."""
        self.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "-", str(path), input=data)


@dataclass
class Hosts:
    prefix: str
    subnet: str  # "10.213.K"
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def head(self) -> Host:
        return self.hosts[0]

    @property
    def workers(self) -> list[Host]:
        return self.hosts[1:]

    @property
    def address(self) -> str:
        """The Ray cluster's address (the head's GCS)."""
        return f"{self.head.address}:{RAY_PORT}"


def _free_subnet() -> str:
    used = sh("ip", "-o", "-4", "addr", "show")
    for k in range(1 + os.getpid() % 200, 255):
        if f" 10.213.{k}." not in used:
            return f"10.213.{k}"
    raise RuntimeError("no free /24 in 10.213.0.0/16 for the namespace hosts")


def _add_host(hosts: Hosts, name: str, index: int, hidden: Sequence[Path]) -> Host:
    host = Host(name, f"{hosts.prefix}-{name}", f"{hosts.subnet}.{index}")
    outside, inside = f"{hosts.prefix}{index}h", f"{hosts.prefix}{index}n"
    sh("ip", "netns", "add", host.netns)
    sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
    sh("ip", "link", "set", inside, "netns", host.netns)
    sh("ip", "link", "set", outside, "master", hosts.bridge, "up")
    sh("ip", "-n", host.netns, "link", "set", inside, "name", "eth0")
    sh("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
    sh("ip", "-n", host.netns, "link", "set", "eth0", "up")
    sh("ip", "-n", host.netns, "link", "set", "lo", "up")
    mounts = ["/tmp/ray", "/dev/shm", *map(str, hidden)]
    script = " && ".join(f'mkdir -p "{m}" && mount -t tmpfs -o mode=1777 tmpfs "{m}"' for m in mounts)
    host.anchor = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"{script} && echo ready && exec sleep infinity",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert host.anchor.stdout is not None
    if host.anchor.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"host {name}: mount namespace failed: {host.anchor.stderr.read().decode()}")  # type: ignore[union-attr]
    hosts.hosts.append(host)
    return host


def teardown(hosts: Hosts) -> None:
    for host in hosts.hosts:
        host.kill(keep_anchor=False)
        if host.anchor is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.anchor.wait(timeout=10)
        sh("ip", "netns", "del", host.netns, check=False)
    sh("ip", "link", "del", hosts.bridge, check=False)


@contextlib.contextmanager
def namespace_hosts(names: Sequence[str], hidden: Sequence[Path]) -> Iterator[Hosts]:
    """Hosts ``names`` (the first is the head, which sees everything; the others do not see ``hidden``)."""
    require_namespaces()
    hosts = Hosts(prefix=f"tz{os.getpid() % 100000}", subnet=_free_subnet())
    try:
        sh("ip", "link", "add", hosts.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{hosts.subnet}.254/24", "dev", hosts.bridge)
        sh("ip", "link", "set", hosts.bridge, "up")
        for index, name in enumerate(names, start=1):
            _add_host(hosts, name, index, () if index == 1 else hidden)
        yield hosts
    finally:
        teardown(hosts)


def ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


#: Ray's token authentication across the hosts: one token of this run's own, in every host's environment
TOKEN = secrets.token_hex(32)


def ray_env(**extra: str) -> dict[str, str]:
    """The environment of every Ray process and driver on the hosts."""
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, **extra}


def start_ray(hosts: Hosts, worker_cpus: int, env: dict[str, str] | None = None) -> str:
    """``ray start --head`` on the head host (0 CPUs) and ``ray start --address`` on every worker host, every Ray
    process and later command with ``env`` (Ray and Serve read their settings from it); the cluster's address
    once every node is alive. Ray already running on a host (an earlier :func:`start_ray`) is killed first."""
    for host in hosts.hosts:
        host.kill()
        host.env = dict(env or {})
    head = hosts.head
    head.run(
        ray_bin(), "start", "--head", f"--node-ip-address={head.address}", f"--port={RAY_PORT}", "--num-cpus=0",
        "--include-dashboard=false", *COMMON, timeout=START_TIMEOUT,
    )  # fmt: skip
    for host in hosts.workers:
        start_worker(hosts, host, worker_cpus)
    wait_for_nodes(hosts, len(hosts.hosts))
    return hosts.address


#: every node's ray start options
COMMON = ("--disable-usage-stats", f"--object-store-memory={OBJECT_STORE_BYTES}")


def start_worker(hosts: Hosts, host: Host, cpus: int) -> None:
    """``ray start --address`` on ``host`` (again, after it was lost: a new node joins)."""
    host.run(
        ray_bin(), "start", f"--address={hosts.address}", f"--node-ip-address={host.address}", f"--num-cpus={cpus}",
        *COMMON, timeout=START_TIMEOUT,
    )  # fmt: skip


def is_up(host: Host) -> bool:
    """Whether any process but the anchor runs on the host (its Ray daemons)."""
    return any(pid != host.anchor.pid for pid in host.pids()) if host.anchor else False


ALIVE = (
    "import json, ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
    "print(json.dumps(sorted(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive'])))"
)


def alive_nodes(hosts: Hosts) -> list[str]:
    """The addresses of the alive nodes, asked from the head host."""
    out = hosts.head.run(sys.executable, "-c", ALIVE, hosts.address, timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def wait_for_nodes(hosts: Hosts, count: int, timeout: float = START_TIMEOUT) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        alive = alive_nodes(hosts)
        if len(alive) == count or time.monotonic() > deadline:
            assert len(alive) == count, f"{len(alive)} of {count} Ray nodes alive: {alive}"
            return alive
        time.sleep(1)
