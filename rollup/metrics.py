"""The rollup worker's ``/metrics`` (Prometheus text 0.0.4) and ``/health``, stdlib only.

Owns the values' names and rendering; the worker sets them (one thread writes, the
HTTP thread reads: a scrape may see a value one update old)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "civicair_rollup_lag_seconds": (
        "gauge", "Age of the oldest dirty mark not yet rolled up, of an hour below the coverage watermark "
                 "(the open hour waits by design; 0 when none) [s]"),
    "civicair_rollup_oldest_dirty_hour_seconds": (
        "gauge", "Start of that mark's hour, UTC epoch (0 when none) [s]"),
    "civicair_rollup_marks_waiting": (
        "gauge", "Dirty marks read but not rolled up (debounced, open hours, or recent, to be redone)"),
    "civicair_rollup_covered_until_seconds": (
        "gauge", "Every hour before this time is rolled up (UTC epoch) [s]"),
    "civicair_rollup_hours_recomputed_total": ("counter", "Station-hours recomputed from raw"),
    "civicair_rollup_days_recomputed_total": ("counter", "Station-days recomputed from raw"),
    "civicair_rollup_cycles_total": ("counter", "Passes over the dirty marks completed"),
    "civicair_rollup_failures_total": ("counter", "Passes that failed (InfluxDB down or refusing)"),
    "civicair_rollup_cycle_seconds": ("gauge", "Duration of the last completed pass [s]"),
}


class RollupMetrics:
    def __init__(self) -> None:
        self.values: dict[str, float] = dict.fromkeys(METRICS, 0.0)

    def set(self, name: str, value: float) -> None:
        self.values[name] = float(value)

    def inc(self, name: str, amount: float = 1) -> None:
        self.values[name] += amount

    def render(self) -> bytes:
        out = []
        for name, (kind, help_text) in METRICS.items():
            value = self.values[name]
            text = str(int(value)) if value.is_integer() else repr(value)
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {text}"]
        return ("\n".join(out) + "\n").encode()


def parse(text: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


class MetricsServer:
    """``/metrics`` and ``/health`` in a daemon thread (port 0: a free one, see ``port``)."""

    def __init__(self, metrics: RollupMetrics, health: Callable[[], tuple[bool, dict]], host: str,
                 port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/metrics":
                    body, ctype, status = metrics.render(), CONTENT_TYPE, 200
                elif self.path == "/health":
                    ok, detail = health()
                    body, ctype, status = orjson.dumps(detail), "application/json", 200 if ok else 503
                else:
                    body, ctype, status = b"not found\n", "text/plain", 404
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rollup-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
