"""sd_notify without libsystemd: READY=1 and WATCHDOG=1 over $NOTIFY_SOCKET.

A no-op when not started by systemd (no NOTIFY_SOCKET), so tests and
``civicair stack`` run the same code.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(state.encode())
        return True
    except OSError:
        return False
