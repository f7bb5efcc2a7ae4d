"""The test and stack servers: ports that stay free, and a start that tells the truth.

A CI run once failed because influxd's free port was taken between choosing it and
binding it ("bind: address already in use"). These tests hold a port with another
socket, as an unlucky client would, and check what each server does then.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicair import services
from civicair.services import InfluxDB, Mosquitto, ServiceError, free_port


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_free_ports_avoid_the_kernel_ephemeral_range_and_never_repeat() -> None:
    low, high = services._ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not [p for p in ports if low <= p <= high]
    for port in ports[:20]:
        with socket.socket() as s:  # and each one can really be bound
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("server_class", [Mosquitto, InfluxDB])
def test_a_port_taken_before_the_first_start_is_replaced(server_class, tmp_path: Path,
                                                         held_port: int) -> None:
    server = server_class(tmp_path)
    server.port = held_port  # as if another process took it after we chose it
    with server:
        assert server.port != held_port
        assert server.ready()


@pytest.mark.parametrize("server_class", [Mosquitto, InfluxDB])
def test_a_port_the_caller_chose_is_kept_and_a_taken_one_is_a_clear_error(
        server_class, tmp_path: Path, held_port: int) -> None:
    server = server_class(tmp_path, port=held_port)
    with pytest.raises(ServiceError, match="(?i)address already in use") as raised:
        server.start(timeout=15)
    assert str(server.log_path) in str(raised.value)
    assert server.port == held_port
    assert not server.running


def test_mosquitto_is_not_ready_while_another_process_answers_on_its_port(
        tmp_path: Path, held_port: int) -> None:
    """A TCP connect to the held port succeeds; only the broker's own log says whether
    *it* listens. Before this check, start() returned a broker that had already exited."""
    broker = Mosquitto(tmp_path, port=held_port)
    with pytest.raises(ServiceError):
        broker.start(timeout=15)
    assert broker.proc is None or broker.proc.poll() is not None


def test_a_restart_keeps_the_port(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    with broker:
        port = broker.port
    with broker:
        assert broker.port == port
        assert broker.ready()


def test_a_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ServiceError, match=r"apt-get install influxdb"):
        InfluxDB(tmp_path / "db")
