"""A TCP proxy that can play a dead router, for network-outage tests.

`TcpProxy(target_port).start()` listens on a free loopback port (`url`) and forwards every connection
to the target. `freeze()` stops it cold: no new connection is accepted (the kernel queues them, then
drops SYNs, so a connect hangs) and no byte moves either way on open ones (they stay in the socket
buffers), so requests hang until the agents' own timeouts, exactly as behind a router that died; nothing
is refused or reset. `resume()` carries on, delivering what was held. Threads, one pair per connection.
"""
from __future__ import annotations

import select
import socket
import threading

POLL_S = 0.05
BUFFER_BYTES = 64 * 1024


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.listener.settimeout(POLL_S)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()
        return self

    @property
    def is_frozen(self) -> bool:
        return not self._flowing.is_set()

    def freeze(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()  # wake every waiting thread so it sees the close
        with self._lock:
            for sock in [self.listener, *self._sockets]:
                sock.close()

    def _wait_until_flowing(self) -> bool:
        """Block while frozen; False once closed."""
        while not self._flowing.wait(POLL_S):
            pass
        return not self._closed.is_set()

    def _accept_loop(self) -> None:
        while self._wait_until_flowing():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server itself is down: as a router would pass on its refusal
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Copy src to dst while flowing; a frozen proxy neither reads nor writes."""
        try:
            while self._wait_until_flowing():
                readable, _, _ = select.select([src], [], [], POLL_S)
                if not readable or not self._flowing.is_set():
                    continue  # frozen meanwhile: leave the bytes where they are
                data = src.recv(BUFFER_BYTES)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if not self._wait_until_flowing():
                    return
                dst.sendall(data)
        except (OSError, ValueError):  # either side closed or reset (ValueError: closed by close())
            pass
        finally:
            self._forget(src, dst)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                if sock in self._sockets:
                    self._sockets.remove(sock)
                    try:
                        sock.close()
                    except OSError:
                        pass
