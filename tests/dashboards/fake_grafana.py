"""A tiny in-process fake of the Grafana HTTP API: just what `dashboards publish` calls.

It stores folders, datasources and dashboards in dicts, answers as Grafana 11 does
(404 for what is missing, ``id``/``version`` added to what it stores, secrets never
returned), checks the bearer token, and records every request that writes. It is a
stand-in for testing the idempotence logic, not a model of Grafana's validation.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeGrafana:
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.writes: list[tuple[str, str, dict]] = []
        self.requests: list[tuple[str, str]] = []
        self._ids = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                with fake._lock:
                    fake.requests.append((method, self.path))
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        return self._send(401, {"message": "Unauthorized"})
                    if method != "GET":
                        fake.writes.append((method, self.path, copy.deepcopy(body)))
                    status, answer = fake.route(method, self.path, body)
                self._send(status, answer)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def route(self, method: str, path: str, body):
        path = path.split("?")[0]
        if method == "GET" and path == "/api/health":
            return 200, {"database": "ok", "version": "11.6.0"}
        if m := re.fullmatch(r"/api/folders/([^/]+)", path):
            uid = m.group(1)
            if method == "GET":
                if uid not in self.folders:
                    return 404, {"message": "folder not found"}
                return 200, self.folders[uid]
            if method == "PUT" and uid in self.folders:
                f = self.folders[uid]
                f.update(title=body["title"], version=f["version"] + 1)
                return 200, f
        if path == "/api/folders" and method == "POST":
            f = {"id": self._next_id(), "uid": body["uid"], "title": body["title"], "version": 1}
            self.folders[body["uid"]] = f
            return 200, f
        if m := re.fullmatch(r"/api/datasources/uid/([^/]+)", path):
            uid = m.group(1)
            if method == "GET":
                if uid not in self.datasources:
                    return 404, {"message": "Data source not found"}
                ds = copy.deepcopy(self.datasources[uid])
                secure = ds.pop("secureJsonData", {}) or {}
                ds["secureJsonFields"] = {k: True for k in secure}
                return 200, ds
            if method == "PUT" and uid in self.datasources:
                old = self.datasources[uid]
                new = {**copy.deepcopy(body), "id": old["id"], "version": old["version"] + 1,
                       "readOnly": old.get("readOnly", False)}
                new.setdefault("secureJsonData", old.get("secureJsonData"))
                self.datasources[uid] = new
                return 200, {"message": "Datasource updated", "datasource": new}
        if path == "/api/datasources" and method == "POST":
            ds = {**copy.deepcopy(body), "id": self._next_id(), "version": 1, "readOnly": False}
            self.datasources[body["uid"]] = ds
            return 200, {"message": "Datasource added", "id": ds["id"]}
        if m := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
            uid = m.group(1)
            if method == "GET":
                if uid not in self.dashboards:
                    return 404, {"message": "Dashboard not found"}
                return 200, copy.deepcopy(self.dashboards[uid])
        if path == "/api/dashboards/db" and method == "POST":
            board = copy.deepcopy(body["dashboard"])
            uid = board["uid"]
            old = self.dashboards.get(uid)
            board["id"] = old["dashboard"]["id"] if old else self._next_id()
            board["version"] = old["dashboard"]["version"] + 1 if old else 1
            self.dashboards[uid] = {"dashboard": board, "meta": {"folderUid": body.get("folderUid", "")}}
            return 200, {"status": "success", "uid": uid, "version": board["version"]}
        return 404, {"message": f"fake Grafana has no {method} {path}"}
