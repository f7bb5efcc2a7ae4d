"""SensorThings Thing ids (docs/sensorthings.md): the rollup worker persists them.

The API's InfluxDB user may be read-only, so the worker (already a writer, and the one
process of its kind) keeps the table :data:`civicair.schema.storage.THING_IDS`: each pass
reads the table and every known station in one round trip, and writes the ids
:func:`civicair.schema.storage.assign_thing_ids` gives the stations not in it yet (one
``/write``). The API computes the same ids for those stations until they are persisted, so
an id a client saw never changes.

Owns: when the table is written. Must not own the assignment rule (the schema's) or the
API's reading of the table (api/sta/model.py).
"""

from __future__ import annotations

import logging

from civicair import influxql
from civicair.influx import Influx, InfluxRejected, series
from civicair.schema import storage

log = logging.getLogger("civicair.rollup")


def read(influx: Influx, rp: str | None) -> tuple[dict[str, int], set[str]]:
    """(the persisted table: station -> id, every known station), in one request."""
    table_result, stations_result = influx.query(
        influxql.statements(influxql.thing_ids(rp), influxql.known_stations()), epoch="s")
    table = {s["tags"]["station"]: s["values"][0][1] for s in series(table_result)
             if s.get("values") and isinstance(s["values"][0][1], int)}
    stations = {row[1] for s in series(stations_result) for row in s.get("values") or []}
    return table, stations


def sync(influx: Influx, rp: str | None) -> dict[str, int]:
    """Persist a Thing id for every known station without one; returns those written."""
    table, stations = read(influx, rp)
    assigned = storage.assign_thing_ids(table, stations)
    new = {station: tid for station, tid in assigned.items() if table.get(station) != tid}
    if new:
        try:
            influx.write(storage.thing_ids_lines(new), rp=rp)
        except InfluxRejected as exc:  # e.g. a finite policy: time 0 lies outside it
            raise InfluxRejected(exc.status, f"Thing ids cannot be stored in retention policy "
                                 f"{rp or '(the default)'}, which must keep points forever like the "
                                 f"rollups (CIVICAIR_ROLLUP_RP): {exc.message}") from exc
        log.info("assigned SensorThings Thing ids to %d stations (%s)", len(new),
                 ", ".join(f"{s}={i}" for s, i in sorted(new.items(), key=lambda kv: kv[1])[:5])
                 + (", …" if len(new) > 5 else ""))
    return new
