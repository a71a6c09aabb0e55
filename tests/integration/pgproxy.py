"""A TCP proxy in front of PostgreSQL that a test can stop, start and freeze: the database as a failing
data centre shows it to one process (refused connections, dropped connections, a network that stops
carrying bytes), without touching the server the rest of the suite uses."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time


class PgProxy:
    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.listener: socket.socket | None = None
        self.port = 0
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.frozen = threading.Event()  # bytes are held, not forwarded: a hung database
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pgproxy", daemon=True)
        self._listen()
        self.thread.start()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self.listener = listener

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """PostgreSQL is down: every connection is cut and new ones are refused."""
        with self.lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            for a, b in self.pairs:
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.close()
            self.pairs = []

    def start(self) -> None:
        """PostgreSQL is back on the same port."""
        with self.lock:
            if self.listener is None:
                self._listen()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def close(self) -> None:
        self.stopped.set()
        self.stop()
        self.thread.join(5)

    def _run(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                listener = self.listener
                pairs = list(self.pairs)
            readable: list[socket.socket] = []
            sel = selectors.DefaultSelector()
            try:
                if listener is not None:
                    # stop() may close it between the lock and here: a closed listener is skipped this turn
                    with contextlib.suppress(ValueError, OSError, KeyError):
                        sel.register(listener, selectors.EVENT_READ)
                if not self.frozen.is_set():
                    for a, b in pairs:
                        for s in (a, b):
                            with contextlib.suppress(ValueError, OSError, KeyError):
                                sel.register(s, selectors.EVENT_READ)
                with contextlib.suppress(OSError, ValueError):
                    readable = [key.fileobj for key, _ in sel.select(0.02)]  # type: ignore[misc]
            finally:
                sel.close()
            if not readable:
                time.sleep(0.002 if not self.frozen.is_set() else 0.02)
                continue
            for s in readable:
                if s is listener:
                    self._accept(listener)
                else:
                    self._forward(s)

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        client.setblocking(False)
        upstream.setblocking(False)
        with self.lock:
            self.pairs.append((client, upstream))

    def _forward(self, s: socket.socket) -> None:
        with self.lock:
            pair = next((p for p in self.pairs if s in p), None)
        if pair is None:
            return
        other = pair[1] if s is pair[0] else pair[0]
        try:
            data = s.recv(65536)
            if data:
                other.setblocking(True)
                other.sendall(data)
                other.setblocking(False)
                return
        except OSError:
            pass
        with self.lock:
            if pair in self.pairs:
                self.pairs.remove(pair)
        for x in pair:
            with contextlib.suppress(OSError):
                x.close()
