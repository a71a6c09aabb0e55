"""Active/standby in one process (payeasy.line_lock on the embedded default's flock), the commserver's own
metrics (payeasy.commserver_metrics) and the nodes' heartbeat rows (payeasy.line_nodes). Real processes
and PostgreSQL's advisory lock: tests/integration/test_commserver_failover.py."""

from __future__ import annotations

import asyncio
import datetime
import io
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from payeasy.commserver import CommServer
from payeasy.commserver_metrics import LineStats, metrics_app, parse_addr
from payeasy.line_lock import Leadership, _FileLineLock, line_lock
from payeasy.line_nodes import Heartbeat, line_nodes
from payeasy.models.line import LineNode

PORT = 7160


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def run_in_own_loop(main: Any) -> None:
    """``asyncio.run(main())`` on a thread of its own: another test of the session (a browser driven by
    Playwright's sync API) may leave a loop running on this thread, where asyncio.run refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


def test_two_nodes_on_one_port_one_listens_and_the_other_takes_over(tmp_path: Path) -> None:
    """Two locks on one file conflict even in one process (flock is per open file): a second node
    stands by without the port, and takes the lock and the port once the first stops."""
    path = str(tmp_path / "commserver.lock")
    roles: dict[str, list[bool]] = {"a": [], "b": []}

    async def main() -> None:
        a = CommServer(host="127.0.0.1", port=PORT, batch_max=8)
        b = CommServer(host="127.0.0.1", port=PORT, batch_max=8)
        lead_a = Leadership(_FileLineLock(path), retry=0.1, grace=1.0, on_role=roles["a"].append)
        lead_b = Leadership(_FileLineLock(path), retry=0.1, grace=1.0, on_role=roles["b"].append)
        serving_a = asyncio.create_task(a.serve(leadership=lead_a))
        await _until(lambda: a.listening)
        serving_b = asyncio.create_task(b.serve(leadership=lead_b))
        await asyncio.sleep(0.5)  # b tried the lock several times meanwhile
        assert a.listening and not b.listening
        assert await asyncio.to_thread(_connects, PORT)

        a.stop()
        await serving_a
        stopped = time.monotonic()
        await _until(lambda: b.listening, 2.0)
        print(f"\n  standby listening {1000 * (time.monotonic() - stopped):.0f} ms after the active stopped")
        assert await asyncio.to_thread(_connects, PORT)
        b.stop()
        await serving_b

    run_in_own_loop(main)
    assert roles["a"][-2:] == [True, False]
    assert True in roles["b"] and roles["b"][-1] is False
    assert not _connects(PORT)


def test_a_commserver_on_an_ephemeral_port_takes_no_lock() -> None:
    assert line_lock(0) is None


def test_the_last_minute_of_acknowledgements() -> None:
    stats = LineStats()
    now = 1000.0
    for _ in range(99):
        stats.answered(b"1200xxxx", "0000", now - 0.002, now)  # 2 ms
    stats.answered(b"1100xxxx", "9001", now - 0.5, now)  # 500 ms
    frames, p50, p99 = stats.last_minute(now)
    assert frames == 100
    assert p50 is not None and 2.0 <= p50 <= 2.2
    assert p99 is not None and 2.0 <= p99 <= 2.2
    assert stats.last_minute(now + 61) == (0, None, None)  # a minute later: nothing
    stats.set_role(True)
    text = _scrape(metrics_app(stats.registry, ""), "")[1]
    assert 'payeasy_commserver_frames_total{message_type="1200",response_code="0000"} 99.0' in text
    assert 'payeasy_commserver_ack_latency_seconds_count{message_type="1100"} 1.0' in text
    assert "payeasy_commserver_role 1.0" in text


def _scrape(app: Any, authorization: str, path: str = "/metrics") -> tuple[str, str]:
    got: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"] = status

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    body = b"".join(app(environ, start_response))
    return got["status"], body.decode()


def test_the_metrics_endpoint_asks_for_the_token_when_one_is_set() -> None:
    app = metrics_app(LineStats().registry, "s3cret")
    assert _scrape(app, "")[0].startswith("404")
    assert _scrape(app, "Bearer wrong")[0].startswith("404")
    assert _scrape(app, "Bearer s3cret")[0].startswith("200")
    assert _scrape(app, "Bearer s3cret", "/other")[0].startswith("404")
    assert parse_addr("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_addr("9108") == ("127.0.0.1", 9108)
    assert parse_addr("[::1]:9108") == ("::1", 9108)
    with pytest.raises(ValueError):
        parse_addr("localhost:http")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_rows_say_which_node_is_active(settings: Any) -> None:
    settings.COMMSERVER_HEARTBEAT_SECONDS = 5
    role = {"b": "standby"}
    a = Heartbeat(name="host-a:1", role=lambda: "active", figures=lambda: (120, 1.5, 9.0), every=5)
    b = Heartbeat(name="host-b:2", role=lambda: role["b"], figures=lambda: (0, None, None), every=5)
    a.beat()
    b.beat()
    nodes = line_nodes()
    assert [n.name for n in nodes.active] == ["host-a:1"]
    assert [n.name for n in nodes.standbys] == ["host-b:2"]
    assert nodes.active[0].ack_p99_ms == 9.0 and nodes.active[0].frames_last_minute == 120

    # a dies (its last beat still fresh) and b takes over: b is the active one, a is shown as gone
    role["b"] = "active"
    b.beat()
    nodes = line_nodes()
    assert [n.name for n in nodes.active] == ["host-b:2"]
    assert not nodes.standbys
    assert [n.name for n in nodes.nodes if not n.alive] == ["host-a:1"]

    # not seen for three heartbeats: gone; stopped cleanly: gone at once
    LineNode.objects.update(seen_at=timezone.now() - datetime.timedelta(seconds=16))
    assert not line_nodes().active
    b.beat(LineNode.Role.STOPPED)
    assert not line_nodes().active and len(line_nodes().nodes) == 2
