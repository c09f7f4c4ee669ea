"""The test Redis: reachable or skipped (failed under CI), and left as found;
and Redis processes of a test's own — one server, or a primary, a replica and
three Sentinels — on free loopback ports, reaped on the way out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import missing

REDIS_URL = os.environ.get("SSEHUB_TEST_REDIS", "redis://127.0.0.1:6379/15")


def redis_or_skip() -> None:
    """Skip without Redis on a developer machine; fail under CI."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(REDIS_URL)
    try:
        socket.create_connection((url.hostname, url.port or 6379), 1).close()
    except OSError:
        missing(f"Redis is not reachable at {REDIS_URL}")


def drop_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


class RedisReads:
    """`entries`: how many stream entries Redis sent back to this process."""

    def __init__(self) -> None:
        self.entries = 0

    def count(self, reply: object) -> None:
        if isinstance(reply, list | tuple):
            if len(reply) == 2 and isinstance(reply[0], str) and isinstance(reply[1], dict):
                self.entries += 1  # one entry: (stream id, fields)
            else:
                for item in reply:
                    self.count(item)


def count_redis_reads(monkeypatch: pytest.MonkeyPatch) -> RedisReads:
    """From now to the end of the test, count the stream entries every
    redis-py asyncio client of this process receives (pipelines included)."""
    from redis.asyncio.client import Pipeline, Redis

    reads = RedisReads()
    command: Any = Redis.execute_command  # redis-py leaves it untyped
    execute = Pipeline.execute

    async def counted_command(self: Redis, *args: Any, **options: Any) -> Any:
        reply = await command(self, *args, **options)
        reads.count(reply)
        return reply

    async def counted_execute(self: Pipeline, raise_on_error: bool = True) -> list[Any]:
        replies = await execute(self, raise_on_error)
        reads.count(replies)
        return replies

    monkeypatch.setattr(Redis, "execute_command", counted_command)
    monkeypatch.setattr(Pipeline, "execute", counted_execute)
    return reads


def redis_server_or_skip() -> None:
    """For tests that run redis-server processes of their own."""
    import shutil

    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")


class RedisProcess:
    """A `redis-server` of the test's own on a free loopback port, in its own
    folder (no persistence unless `args` ask for it). `kill()` is `kill -9`."""

    def __init__(self, folder: Path, *args: str, port: int | None = None) -> None:
        from tests.support.helpers import free_port

        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *more: str) -> None:
        """Start (again, on the same port), then wait until it answers."""
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            ["redis-server", *self.args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--save", "", "--appendonly", "no", *more],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, f"redis-server {self.args} exited at start"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """`kill -9`: no shutdown, nothing flushed."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """Stop it however it is (also when stopped with SIGSTOP), and reap it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.kill()

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


SERVICE = "ssehub-test"


class SentinelGroup:
    """A primary, one replica (`--replicaof`) and three Sentinels watching
    them, with a short down-after (1 s) so a failover takes a few seconds.
    Use it as a context manager: every process is reaped on the way out."""

    def __init__(self, folder: Path) -> None:
        quick = ("--repl-diskless-sync-delay", "0")  # resync at once (default: 5 s)
        self.primary = RedisProcess(folder / "primary", *quick)
        self.replica = RedisProcess(folder / "replica", *quick)
        self.sentinels = [RedisProcess(folder / f"sentinel{i}") for i in range(3)]

    @property
    def sentinel_hosts(self) -> str:
        return ",".join(s.address for s in self.sentinels)

    def url(self, query: str = "") -> str:
        return f"redis+sentinel://{self.sentinel_hosts}/{SERVICE}/0" + (
            f"?{query}" if query else ""
        )

    def __enter__(self) -> SentinelGroup:
        try:
            self.primary.start()
            self.replica.start("--replicaof", "127.0.0.1", str(self.primary.port))
            for sentinel in self.sentinels:
                conf = sentinel.folder / "sentinel.conf"  # Sentinel rewrites it: one each
                conf.write_text(
                    f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                    f"sentinel failover-timeout {SERVICE} 2000\n"
                    f"sentinel parallel-syncs {SERVICE} 1\n"
                )
                sentinel.args = (str(conf), "--sentinel")
                sentinel.start()
            self.until_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for proc in (*self.sentinels, self.primary, self.replica):
            proc.stop()

    def _masters(self) -> list[dict[str, Any]]:
        answers = []
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                answers.append(client.sentinel_master(SERVICE))
            finally:
                client.close()
        return answers

    def until_ready(self, timeout: float = 15) -> None:
        """Until every Sentinel knows the replica and the other two (the
        quorum and the election need it) and the replica is in sync."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._masters()
            if all(s["num-other-sentinels"] == 2 and s["num-slaves"] == 1 for s in states):
                info = self.replica.client()
                try:
                    if info.info("replication").get("master_link_status") == "up":
                        return
                finally:
                    info.close()
            assert time.monotonic() < deadline, f"Sentinels not ready: {states}"
            time.sleep(0.1)

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinels' majority names it now."""
        ports = []
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                ports.append(int(client.sentinel_get_master_addr_by_name(SERVICE)[1]))
            except Exception:
                continue
            finally:
                client.close()
        return max(set(ports), key=ports.count) if len(ports) >= 2 else None


class ClusterGroup:
    """A Redis Cluster of three primaries (and `replicas` replicas of each)
    of the test's own, made with `redis-cli --cluster create`; every process
    reaped on the way out. `url()` is a `redis+cluster://` store URL naming
    the primaries."""

    def __init__(self, folder: Path, replicas: int = 0) -> None:
        from tests.support.helpers import free_port

        self.replicas = replicas
        ports: list[int] = []
        while len(ports) < 3 * (1 + replicas):  # the cluster bus listens on port + 10000
            port = free_port()
            if port < 55000 and port not in ports:
                ports.append(port)
        self.nodes = [
            RedisProcess(
                folder / f"node{i}",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--repl-diskless-sync-delay",
                "0",
                port=port,
            )
            for i, port in enumerate(ports)
        ]

    def url(self, query: str = "") -> str:
        hosts = ",".join(node.address for node in self.nodes[:3])
        return f"redis+cluster://{hosts}" + (f"?{query}" if query else "")

    def __enter__(self) -> ClusterGroup:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(n.address for n in self.nodes),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self.until_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for node in self.nodes:
            node.stop()

    def _replicated(self) -> bool:
        """Whether every primary has its replicas connected and in sync."""
        for node in self.nodes:
            if node.proc is None:
                continue
            client = node.client()
            try:
                info = client.info("replication")
            finally:
                client.close()
            if info["role"] == "master" and info["connected_slaves"] < self.replicas:
                return False
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def holder(self, key: str) -> RedisProcess:
        """The primary that serves `key`'s slot now, as a live node says."""
        node = next(n for n in self.nodes if n.proc is not None)
        client = node.client()
        try:
            slot = client.execute_command("CLUSTER KEYSLOT", key)
            ranges = client.execute_command("CLUSTER SLOTS")
        finally:
            client.close()
        for first, last, primary, *_ in ranges:
            if first <= slot <= last:
                return next(n for n in self.nodes if n.port == int(primary[1]))
        raise AssertionError(f"no node serves {key!r}")

    def until_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                if node.proc is None:
                    continue
                client = node.client()
                try:
                    info = client.execute_command("CLUSTER INFO")  # parsed: a dict
                    states.append(info.get("cluster_state"))
                finally:
                    client.close()
            if states == ["ok"] * len(states) and self._replicated():
                return
            assert time.monotonic() < deadline, f"the cluster is not ready: {states}"
            time.sleep(0.1)
