"""Database faults against a real PostgreSQL of the tests' own, stopped and frozen (SIGSTOP).

The cluster is private (initdb in a temporary folder, a free port), so the shared PostgreSQL that
other tests and other work use is never stopped or frozen.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from observatory.settings import Settings
from tests.conftest import serving

PG_BIN = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="needs PostgreSQL 15 binaries")


class Cluster:
    """A throw-away PostgreSQL cluster (trust authentication, 127.0.0.1 only)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="observatory-pg-"))
        self.data = self.root / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def _pids(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
        return [postmaster, *map(int, children.split())]

    def freeze(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def remove(self) -> None:
        try:
            self.thaw()
            self.stop()
        except (OSError, subprocess.CalledProcessError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    instance = Cluster()
    try:
        yield instance
    finally:
        instance.remove()


def fault_settings(cluster: Cluster, tmp_path: Path) -> Settings:
    return Settings(
        database_url=cluster.url,
        db_schema="faults",
        data_dir=tmp_path,
        db_connect_timeout=2,
        db_statement_timeout=1,
        db_startup_wait=1,
    )


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Store unavailable"
    assert "retry later" in body["detail"]
    assert "Traceback" not in response.text and "127.0.0.1" not in response.text  # no internals


def wait_for(url: str, status: int, *, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = get(url)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_starts_with_the_database_down_and_serves_once_it_is_up(cluster: Cluster, tmp_path: Path) -> None:
    with serving(None, fault_settings(cluster, tmp_path)) as server:
        # No database needed: answered at once.
        conformance = get(f"{server}/conformance")
        assert conformance.status_code == 200 and conformance.json()["conformsTo"]
        assert get(f"{server}/collections").json()["collections"]
        assert_unavailable(get(f"{server}/collections/permits/items"))
        assert_unavailable(get(f"{server}/collections/municipalities/tiles/WebMercatorQuad/0/0/0"))
        assert_unavailable(get(f"{server}/map/context"))
        cluster.start()
        try:
            items = wait_for(f"{server}/collections/permits/items", 200, within=20)
            assert items.status_code == 200
            assert items.json()["features"] == [] and items.json()["numberReturned"] == 0
        finally:
            cluster.stop()


def test_a_stopped_database_gives_503_then_recovers_without_restart(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start()
    try:
        with serving(None, fault_settings(cluster, tmp_path)) as server:
            url = f"{server}/collections/permits/items?limit=5"
            for _ in range(3):  # fills the pool with connections that the stop will kill
                assert get(url).status_code == 200
            cluster.stop()
            started = time.monotonic()
            assert_unavailable(get(url))
            assert time.monotonic() - started < 3  # a refused connection is not waited for
            assert get(f"{server}/conformance").status_code == 200
            assert_unavailable(get(f"{server}/map/context"))  # the map reads whole layers: same answer
            cluster.start()
            # The pooled connections died with the server: the first read after it is back
            # discards them and succeeds on a fresh one.
            first = get(url)
            assert first.status_code == 200 and first.json()["numberReturned"] == 0
    finally:
        cluster.stop()


def test_a_frozen_database_gives_503_in_bounded_time_and_stalls_nothing_else(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start()
    try:
        with serving(None, fault_settings(cluster, tmp_path)) as server:
            url = f"{server}/collections/permits/items"
            assert get(url).status_code == 200
            cluster.freeze()
            try:
                # Many stuck requests at once: more than the pool holds.
                answers: list[httpx.Response] = []
                timings: list[float] = []

                def call() -> None:
                    started = time.monotonic()
                    answers.append(get(url))
                    timings.append(time.monotonic() - started)

                threads = [threading.Thread(target=call) for _ in range(20)]
                for thread in threads:
                    thread.start()
                time.sleep(0.5)
                # Meanwhile, what needs no database answers at once.
                for path in ("/conformance", "/collections", "/openapi.json", "/indicators"):
                    started = time.monotonic()
                    assert get(f"{server}{path}").status_code == 200
                    assert time.monotonic() - started < 1, path
                for thread in threads:
                    thread.join(timeout=60)
                assert len(answers) == 20
                for answer in answers:
                    assert_unavailable(answer)
                # Statement deadline 1 s + 2 s grace (or the 2 s connect / pool timeout).
                assert max(timings) < 8, timings  # measured: 2.5–4.8 s
            finally:
                cluster.thaw()
            recovered = wait_for(url, 200, within=15)
            assert recovered.status_code == 200 and recovered.json()["features"] == []
    finally:
        cluster.stop()
