"""Download every raw reading of some stations over a time range, as one CSV file.

    python docs/examples/download.py http://localhost:8000 sim-1,sim-2 2026-11-01 2026-12-01 readings.csv

The JSON way, page by page with ``meta.paging.next_cursor``, so it works for ranges of
any length and shows how paging is meant to be used. (For a CSV you could also ask the
API for ``format=csv`` without ``limit``: it streams the whole range in one response.)
Needs only httpx (``pip install httpx``). Prints one progress line per page.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import Any

import httpx


def readings(client: httpx.Client, stations: str, start: str, end: str,
             page_size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Pages of raw readings, oldest first; nothing skipped or repeated."""
    params = {"stations": stations, "from": start, "to": end, "limit": page_size}
    while True:
        response = client.get("/v1/measurements", params=params)
        response.raise_for_status()
        body = response.json()
        yield body["results"]
        cursor = body["meta"]["paging"]["next_cursor"]
        if cursor is None:
            return
        params["cursor"] = cursor


def download(client: httpx.Client, stations: str, start: str, end: str, path: str,
             page_size: int = 10_000) -> int:
    rows: list[dict[str, Any]] = []
    for page in readings(client, stations, start, end, page_size):
        rows += page
        print(f"{len(rows):,} readings so far", file=sys.stderr)
    columns = list(dict.fromkeys(key for row in rows for key in row))  # first-seen order
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python docs/examples/download.py API_URL STATIONS FROM TO OUT.csv\n"
              "  e.g. python docs/examples/download.py http://localhost:8000 sim-1,sim-2 "
              "2026-11-01 2026-12-01 readings.csv", file=sys.stderr)
        return 2
    base_url, stations, start, end, path = argv
    with httpx.Client(base_url=base_url, timeout=60) as http:
        try:
            count = download(http, stations, start, end, path)
        except httpx.HTTPStatusError as exc:  # the API says what was wrong in its JSON body
            print(f"{exc.response.status_code} from {exc.request.url}: {exc.response.text}", file=sys.stderr)
            return 1
        except httpx.TransportError as exc:
            print(f"cannot reach {base_url}: {exc}", file=sys.stderr)
            return 1
    print(f"wrote {count:,} readings to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
