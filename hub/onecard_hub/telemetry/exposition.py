"""/metrics over HTTP: prometheus_client's own server (a thread of its own, off the event loop).

It answers the Prometheus text format, or OpenMetrics when the scraper asks for it, gzip when asked,
on every path (/metrics by convention). No authentication: listen on loopback or on a management
network only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


class MetricsListenError(OSError):
    """--metrics-listen names an address the hub cannot listen on."""


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets: [::1]:9464) → (host, port); ValueError when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Blocks until the server's thread is done (up to its half-second poll): call it off the loop."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_metrics(listen: str, registry: CollectorRegistry) -> MetricsServer:
    host, port = split_listen(listen)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsListenError(
            f"cannot listen on --metrics-listen {listen}: {exc.strerror or exc}"
        ) from None
    return MetricsServer(server, thread, host)
