"""Loopback ports: free ones, and a stack's recorded ones kept while they stay free."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers themselves do, so a port in TIME_WAIT after a restart counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def choose(ports: dict[str, int], name: str, preferred: int | None) -> int:
    """Keep a stack's recorded port while it is free, else the preferred one, else any free one."""
    for candidate in (ports.get(name), preferred):
        if candidate and port_free(candidate):
            ports[name] = candidate
            return candidate
    ports[name] = free_port()
    return ports[name]
