"""``civicair archive build``: daily Parquet and CSV.gz files and their data package.

Layout under the archive directory (Hive-style, so readers discover one dataset)::

    v1/readings/year=2026/month=11/2026-11-29.parquet
    v1/readings-csv/year=2026/month=11/2026-11-29.csv.gz
    v1/readings.schema.json       Table Schema of every daily file
    v1/stations.csv               station metadata, published (rounded) coordinates
    v1/datapackage.json           Frictionless Data Package v2: every file, bytes, sha256

The CSV files sit in a tree of their own: with both formats in one folder, pyarrow and
pandas, asked for the Parquet dataset under ``readings/``, open the ``.csv.gz`` files too
and fail ("Parquet magic bytes not found"); apart, each tree is one dataset to every reader.

A day is read from InfluxDB with one chunked statement in CSV (series per station, in
station order, rows in time order), parsed by Arrow's streaming CSV reader; each row group
of whole stations is sorted by station, channel and time and written on a writer thread,
so the day is never held in memory. Files are written under a temporary name and renamed
when complete, so a reader never sees half a file, and a failed build leaves none behind.

What a build covered is recorded per day in the data package (``rows``, ``updated``, and
``coverage``: a fingerprint of the day in InfluxDB). InfluxDB 1.x keeps no write time, so
"has the day changed since" is the fingerprint: readings (count of ``n``) and the sums of
``seq``, ``qc`` and ``n``. A replayed spool adds readings (the count changes); a ``qc``
amendment changes the ``qc`` sum. A day whose fingerprint is unchanged is not read again;
a rebuilt day whose files come out byte-identical is not rewritten (bytes and mtime stay).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from archive import schema
from civicair import influxql
from civicair.influx import Influx, InfluxError, series
from civicair.schema.storage import published_position

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
PACKAGE = "datapackage.json"
SCHEMA_FILE = "readings.schema.json"
STATIONS = "stations.csv"
#: Readings per Parquet row group (and per CSV write): big enough for good compression and
#: fast scans, small enough that a day never sits in memory (1.44 M readings = 22 groups).
ROW_GROUP_ROWS = 65_536
#: Rows per chunk InfluxDB streams.
CHUNK_SIZE = 10_000
#: A day is final this many days after it ended: the bridge's spool keeps a reading at
#: most 30 days (firmware_bridge/config.py ``spool_max_age_days``), plus a day for the ingest.
FINAL_AFTER_DAYS = 31


class ArchiveError(Exception):
    """A build that cannot go on; the message says which day and why."""


@dataclass(frozen=True, slots=True)
class Licence:
    name: str = "CC-BY-4.0"
    path: str = "https://creativecommons.org/licenses/by/4.0/"
    attribution: str = "civicair contributors and volunteer station hosts"


@dataclass(slots=True)
class DayRecord:
    """What the archive holds for one day (one entry per day in the data package)."""

    day: date
    rows: int
    coverage: dict[str, int]
    updated: str
    complete: bool
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # "parquet"/"csv" -> path, bytes, hash


@dataclass(slots=True)
class BuildReport:
    built: list[date] = field(default_factory=list)
    unchanged: list[date] = field(default_factory=list)
    empty: list[date] = field(default_factory=list)

    def summary(self) -> str:
        def days(ds: list[date]) -> str:
            return ", ".join(map(str, ds)) if len(ds) <= 5 else f"{ds[0]} … {ds[-1]}"
        parts = [f"{len(self.built)} day(s) written" + (f" ({days(self.built)})" if self.built else ""),
                 f"{len(self.unchanged)} unchanged"]
        if self.empty:
            parts.append(f"{len(self.empty)} without readings")
        return "; ".join(parts)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ArchiveError(f"not a day: {text!r} (expected YYYY-MM-DD)") from None


def day_paths(day: date) -> dict[str, str]:
    """Paths (relative to ``v1/``) of a day's files."""
    part = f"year={day.year:04d}/month={day.month:02d}"
    return {"parquet": f"readings/{part}/{day.isoformat()}.parquet",
            "csv": f"readings-csv/{part}/{day.isoformat()}.csv.gz"}


def is_final(day: date, today: date, final_after_days: int = FINAL_AFTER_DAYS) -> bool:
    return day + DAY + timedelta(days=final_after_days) <= today


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# -- reading InfluxDB --------------------------------------------------------------------------


def fingerprint(influx: Influx, day: date) -> dict[str, int]:
    (result,) = influx.query(influxql.archive_fingerprint(_start(day), _start(day + DAY)))
    found = series(result)
    if not found:
        return {"rows": 0, "seq": 0, "qc": 0, "n": 0}
    row = dict(zip(found[0]["columns"], found[0]["values"][0], strict=True))
    return {k: int(row.get(k) or 0) for k in ("rows", "seq", "qc", "n")}


def day_counts(influx: Influx, start: date, end: date) -> dict[date, int]:
    """Readings per UTC day in [start, end), for the days that have any."""
    (result,) = influx.query(influxql.archive_day_counts(_start(start), _start(end)))
    return {datetime.fromtimestamp(t, UTC).date(): int(n)
            for s in series(result) for t, n in s["values"] if n}


def first_day(influx: Influx) -> date | None:
    """The UTC day of the oldest reading stored, or None when there is none."""
    (result,) = influx.query(influxql.first_seen())
    times = [s["values"][0][0] for s in series(result) if s.get("values")]
    return datetime.fromtimestamp(min(times), UTC).date() if times else None


#: Types of the columns InfluxDB's CSV carries (``time`` in epoch seconds, ``tags`` as
#: ``station=<id>``); a column absent from a day is an empty column of the archive.
_CSV_TYPES = {"name": pa.string(), "tags": pa.string(), "time": pa.int64()} | {
    f.name: f.type for f in schema.ARROW_SCHEMA if f.name not in ("time", *schema.TAG_COLUMNS)}
_TAG_PREFIX = "station="


def _present(csv_schema: pa.Schema) -> pa.Schema:
    """The archive's fields that InfluxDB's CSV carries (``time`` and ``station`` always)."""
    names = set(csv_schema.names)
    return pa.schema([f for f in schema.ARROW_SCHEMA if f.name in ("time", "station") or f.name in names])


def _to_archive(batch: pa.RecordBatch, present: pa.Schema) -> pa.RecordBatch:
    """One block of InfluxDB's CSV as the archive's columns it carries (rows in InfluxDB's order)."""
    tags = batch.column("tags")
    if batch.num_rows and not pc.all(pc.starts_with(tags, _TAG_PREFIX)).as_py():
        raise ArchiveError("InfluxDB's rows are not grouped by station (tags column)")
    arrays = []
    for f in present:
        if f.name == "time":  # epoch seconds from InfluxDB
            arrays.append(batch.column("time").cast(pa.timestamp("s", tz="UTC")).cast(f.type))
        elif f.name == "station":
            arrays.append(pc.utf8_slice_codeunits(tags, len(_TAG_PREFIX)))
        else:
            arrays.append(batch.column(f.name))
    return pa.RecordBatch.from_arrays(arrays, schema=present)


_NULLS: dict[pa.DataType, pa.Array] = {}


def _nulls(count: int, type_: pa.DataType) -> pa.Array:
    """``count`` nulls of ``type_``: slices of one shared array (Arrow arrays are immutable),
    so the empty columns of a day cost no memory per row group."""
    cached = _NULLS.get(type_)
    if cached is None or len(cached) < count:
        cached = _NULLS[type_] = pa.nulls(max(count, ROW_GROUP_ROWS * 2), type_)
    return cached.slice(0, count)


def _widen(table: pa.Table) -> pa.Table:
    """Every column of the archive, in its order: the absent ones empty."""
    names = set(table.column_names)
    return pa.Table.from_arrays([table.column(f.name) if f.name in names else _nulls(table.num_rows, f.type)
                                 for f in schema.ARROW_SCHEMA], schema=schema.ARROW_SCHEMA)


def _sorted(table: pa.Table) -> pa.Table:
    """Whole stations, in station order as InfluxDB sent them, each sorted by channel and time."""
    order = pc.sort_indices(table, sort_keys=[("station", "ascending"), ("channel", "ascending"),
                                              ("time", "ascending")])
    return _widen(table.take(order))


def read_day(influx: Influx, day: date, chunk_size: int = CHUNK_SIZE,
             row_group_rows: int = ROW_GROUP_ROWS) -> Iterator[pa.Table]:
    """The day's readings sorted by station, channel, time, about ``row_group_rows`` at a time.

    InfluxDB streams the statement's CSV (series per station, in station order, each in time
    order with channels interleaved); Arrow's CSV reader parses it block by block, off the
    GIL. Rows gather until a row group is full; the last station of the group, maybe not
    complete yet, waits for the next one, and the complete stations are sorted. Memory
    holds a row group and a station, never the day.
    """
    stmt = influxql.archive_readings(_start(day), _start(day + DAY))
    last_station: str | None = None
    pending: list[pa.RecordBatch] = []
    rows = 0
    with influx.query_csv(stmt, chunk_size=chunk_size) as body:
        if not body.peek(1):
            return  # no readings: InfluxDB sends no header either
        try:
            # One parsing thread: the cores are InfluxDB's (serialising the CSV) and the writer's.
            reader = pacsv.open_csv(
                body, read_options=pacsv.ReadOptions(block_size=1 << 20, use_threads=False),
                convert_options=pacsv.ConvertOptions(column_types=_CSV_TYPES, strings_can_be_null=True))
        except pa.ArrowInvalid as exc:
            raise ArchiveError(f"InfluxDB's CSV for {day} cannot be read: {exc}") from exc
        unknown = set(reader.schema.names) - set(_CSV_TYPES)
        if unknown:
            raise ArchiveError(f"InfluxDB holds field(s) the archive schema v{schema.VERSION} does not know: "
                               f"{', '.join(sorted(unknown))}; add them to archive/schema.py (a new column)")
        present = _present(reader.schema)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise ArchiveError(f"InfluxDB's CSV for {day} cannot be read: {exc}") from exc
            pending.append(_to_archive(batch, present))
            rows += batch.num_rows
            if rows < row_group_rows:
                continue
            table = pa.Table.from_batches(pending, schema=present)
            stations = table.column("station")
            tail = pc.index(stations, stations[-1]).as_py()  # where the last (maybe partial) station starts
            if tail == 0:
                continue  # one station larger than a row group: keep gathering
            done, rest = table.slice(0, tail), table.slice(tail)
            last_station = _check_order(done, last_station)
            yield _sorted(done)
            pending, rows = rest.to_batches(), rest.num_rows
            pa.default_memory_pool().release_unused()  # give freed blocks back: RSS stays near use
    if rows:
        table = pa.Table.from_batches(pending, schema=present)
        _check_order(table, last_station)
        yield _sorted(table)


def _check_order(table: pa.Table, after: str | None) -> str:
    """Stations come in order and each once: the sort within a row group depends on it."""
    stations = pc.unique(table.column("station"))
    ordered = pc.sort_indices(stations)
    in_order = ordered.to_pylist() == list(range(len(stations)))
    if not in_order or (after is not None and stations[0].as_py() <= after):
        raise ArchiveError("InfluxDB returned stations out of order; nothing was written")
    return stations[-1].as_py()


# -- writing files ---------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _csv_batch(batch: pa.RecordBatch, times: pa.Array, day_start: int) -> pa.RecordBatch:
    """The batch with ``time`` as ISO 8601 text, taken from the day's 86,400 spelled-out seconds
    (a lookup per reading instead of formatting one: strftime cost a second per million)."""
    seconds = pc.subtract(batch.column(0).cast(pa.timestamp("s")).cast(pa.int64()), day_start)
    return pa.RecordBatch.from_arrays([times.take(seconds), *batch.columns[1:]], schema=schema.CSV_SCHEMA)


def _day_times(day: date) -> pa.Array:
    start = pa.scalar(int(_start(day).timestamp()), pa.int64())
    stamps = pc.add(pa.array(range(86_400), pa.int64()), start).cast(pa.timestamp("s"))
    return pc.strftime(stamps, format=schema.TIME_FORMAT)


#: gzip level of the CSV files (zlib: 1 fast … 9 small). Measured on a day of 1.44 M readings
#: (242 MB of CSV): level 4 gives 33.9 MB in 3.5 s, level 6 (gzip's default) 32.4 MB in 9.7 s,
#: level 1 38.7 MB in 2.1 s.
GZIP_LEVEL = 4


class DayWriter:
    """Parquet and CSV.gz of one day, written row group by row group under temporary names.

    The writing runs on a thread of its own: Arrow's Parquet and CSV writers and zlib
    release the GIL, so a row group is compressed while the next one is read from
    InfluxDB. At most two row groups wait for it.
    """

    def __init__(self, day: date, parquet: Path, csv: Path) -> None:
        self.day_start = int(_start(day).timestamp())
        self.times = _day_times(day)
        self.paths = {"parquet": parquet, "csv": csv}
        self.temps = {k: p.with_name(f".{p.name}.tmp-{os.getpid()}") for k, p in self.paths.items()}
        for p in self.paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temps(p)
        self.rows = 0
        self._parquet = pq.ParquetWriter(self.temps["parquet"], schema.ARROW_SCHEMA, compression="zstd",
                                         use_dictionary=True, write_statistics=True)
        self._csv = open(self.temps["csv"], "wb")  # noqa: SIM115 - closed in finish/discard
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip header, no name/mtime
        # Arrow quotes a header it writes itself whatever the style: ours is written here. No
        # quotes in the rows: every text column is an id, enum or time that cannot hold a comma,
        # quote or line break (Arrow refuses to write one that would need quoting).
        self._csv.write(self._gzip.compress((",".join(schema.NAMES) + "\n").encode()))
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._thread.start()

    def write(self, table: pa.Table) -> None:
        if self._failed is not None:
            raise self._failed
        self.rows += table.num_rows
        self._queue.put(table)

    def _run(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._failed is not None:
                continue  # drain: the caller learns of the failure at its next write or finish
            try:
                table = table.combine_chunks()
                self._parquet.write_table(table, row_group_size=max(table.num_rows, 1))
                text = pa.BufferOutputStream()
                for batch in table.to_batches():
                    pacsv.write_csv(_csv_batch(batch, self.times, self.day_start), text, self._options)
                self._csv.write(self._gzip.compress(memoryview(text.getvalue())))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._failed = exc

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        self._stop()
        if self._failed is not None:
            raise self._failed
        self._parquet.close()
        self._csv.write(self._gzip.flush())
        self._csv.close()

    def discard(self) -> None:
        self._stop()
        for closer in (self._parquet.close, self._csv.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing a half-written temp file; it is removed next
                pass
        for p in self.temps.values():
            p.unlink(missing_ok=True)


def _remove_stale_temps(path: Path) -> None:
    """Temporary files of ``path`` left by a build that was killed (its process is gone)."""
    for temp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            os.kill(int(temp.name.rpartition("-")[2]), 0)
        except (ValueError, ProcessLookupError):
            temp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file; False (untouched) when unchanged."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def stations_table(influx: Influx) -> pa.Table:
    """Every station with readings or metadata, with published (rounded) coordinates."""
    (meta_result,) = influx.query(influxql.station_meta())
    (ids_result,) = influx.query(influxql.station_ids())
    metas: dict[str, dict[str, Any]] = {}
    for s in series(meta_result):
        metas[s["tags"]["station"]] = dict(zip(s["columns"], s["values"][0], strict=False))
    ids = {row[1] for s in series(ids_result) for row in s["values"]} | set(metas)
    columns: dict[str, list[Any]] = {c.name: [] for c in schema.STATION_COLUMNS}
    for station in sorted(ids):
        meta = metas.get(station, {})
        exact = meta.get("exact_location") is True
        lat, lon = published_position(_number(meta.get("lat")), _number(meta.get("lon")), exact)
        row = {**{k: meta.get(k) for k in columns}, "station": station, "lat": lat, "lon": lon,
               "exact_location": exact if meta else None,
               # A bridge always on says duty_period 0: no duty period, as the API's null.
               "duty_period": meta.get("duty_period") or None}
        for k, values in columns.items():
            values.append(row[k] if row[k] != "" else None)
    return pa.Table.from_pydict(columns, schema=schema.STATION_ARROW_SCHEMA)


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None  # a JSON bool is not a coordinate


def _csv_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed"))
    return sink.getvalue().to_pybytes()


# -- the archive -------------------------------------------------------------------------------


class Archive:
    """The archive directory: its records (read from and kept in ``v1/datapackage.json``)."""

    def __init__(self, root: Path, licence: Licence | None = None, final_after_days: int = FINAL_AFTER_DAYS,
                 chunk_size: int = CHUNK_SIZE, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.root = Path(root)
        self.base = self.root / f"v{schema.VERSION}"
        self.licence = licence or Licence()
        self.final_after_days = final_after_days
        self.chunk_size = chunk_size
        self.row_group_rows = row_group_rows
        self.records, self.final_through = load_records(self.base / PACKAGE)

    # -- planning --------------------------------------------------------------------------

    def pending_days(self, influx: Influx, today: date) -> list[date]:
        """Complete days with readings not built yet, and built days that may still change
        (not final). Days up to :attr:`final_through` are settled and not looked at again."""
        first = first_day(influx)
        if first is None:
            return []
        start = max(first, self.final_through + DAY) if self.final_through else first
        if start >= today:
            return []
        candidates = set(day_counts(influx, start, today)) | {d for d in self.records if start <= d < today}
        return sorted(d for d in candidates if d not in self.records or not self.records[d].complete
                      or not is_final(d, today, self.final_after_days))

    def last_final_day(self, today: date) -> date:
        return today - DAY - timedelta(days=self.final_after_days)

    # -- building --------------------------------------------------------------------------

    def build(self, influx: Influx, days: Iterable[date] | None = None, *, today: date | None = None,
              explicit: bool = False, force: bool = False,
              progress: Callable[[date, int], None] | None = None) -> BuildReport:
        """Build ``days`` (default: :meth:`pending_days`). ``explicit``: the user named them, so a
        day without readings is an error rather than a gap. Today's day is built partial;
        a future day is refused."""
        today = today or datetime.now(UTC).date()
        settle = days is None  # every pending day is built: the days up to the last final one are settled
        wanted = sorted(set(days)) if days is not None else self.pending_days(influx, today)
        for d in wanted:
            if d > today:
                raise ArchiveError(f"{d} is in the future (today is {today} UTC): nothing to archive yet")
        report = BuildReport()
        stations: pa.Table | None = None
        for d in wanted:
            if stations is None:
                stations = stations_table(influx)
                self._write_stations(stations)
            status = self.build_day(influx, d, today=today, force=force, progress=progress)
            if status == "empty" and explicit:
                raise ArchiveError(f"no readings stored for {d}: unknown day, nothing to archive")
            getattr(report, status).append(d)
            if status == "built":
                self.write_package(today)
        if settle and (self.final_through is None or self.last_final_day(today) > self.final_through):
            self.final_through = self.last_final_day(today)
        self.write_package(today)
        return report

    def build_day(self, influx: Influx, day: date, *, today: date, force: bool = False,
                  progress: Callable[[date, int], None] | None = None) -> str:
        """"built", "unchanged" or "empty". Raises ArchiveError or InfluxError, leaving no file."""
        cover = fingerprint(influx, day)
        record = self.records.get(day)
        complete = day < today
        if cover["rows"] == 0 and record is None:
            return "empty"
        if (record is not None and record.coverage == cover and not force and self._files_intact(record)
                and (record.complete or not complete)):
            return "unchanged"
        paths = day_paths(day)
        writer = DayWriter(day, self.base / paths["parquet"], self.base / paths["csv"])
        try:
            for table in read_day(influx, day, self.chunk_size, self.row_group_rows):
                writer.write(table)
                if progress is not None:
                    progress(day, writer.rows)
            writer.finish()
        except BaseException:
            writer.discard()
            raise
        files = {k: {"path": paths[k], "bytes": writer.temps[k].stat().st_size,
                     "hash": sha256_of(writer.temps[k])} for k in paths}
        same = (record is not None and self._files_intact(record)
                and all(record.files.get(k, {}).get("hash") == files[k]["hash"] for k in files))
        if same and record is not None:
            for p in writer.temps.values():
                p.unlink(missing_ok=True)
            record.coverage, record.complete = cover, record.complete or complete
            return "unchanged"
        for k in paths:
            os.replace(writer.temps[k], writer.paths[k])
        self.records[day] = DayRecord(day=day, rows=writer.rows, coverage=cover, updated=_now_iso(),
                                      complete=complete, files=files)
        log.info("archive %s: %d readings (%s)", day, writer.rows, "complete" if complete else "partial")
        return "built"

    def _files_intact(self, record: DayRecord) -> bool:
        return all((self.base / f["path"]).is_file() and (self.base / f["path"]).stat().st_size == f["bytes"]
                   for f in record.files.values())

    def _write_stations(self, table: pa.Table) -> None:
        write_atomic(self.base / STATIONS, _csv_bytes(table))

    # -- the data package ----------------------------------------------------------------------

    def package(self, today: date) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        stations = self.base / STATIONS
        if stations.exists():
            resources.append({
                "name": "stations", "type": "table", "path": STATIONS, "format": "csv",
                "mediatype": "text/csv", "encoding": "utf-8", "bytes": stations.stat().st_size,
                "hash": sha256_of(stations), "title": "Stations",
                "description": "Station metadata; positions rounded to 3 decimals unless the host opted in.",
                "schema": schema.station_table_schema(),
            })
        for day in sorted(self.records):
            r = self.records[day]
            # ``rows`` only on the CSV: frictionless counts a table's rows against it, and reads
            # Parquet only with an extra plugin (the Parquet file is checked by bytes and hash).
            common = {"day": day.isoformat(), "updated": r.updated, "complete": r.complete,
                      "final": is_final(day, today, self.final_after_days), "coverage": r.coverage}
            parquet, csv = r.files["parquet"], r.files["csv"]
            resources.append({
                "name": f"readings-{day.isoformat()}-parquet", "type": "file", "path": parquet["path"],
                "format": "parquet", "mediatype": "application/vnd.apache.parquet",
                "bytes": parquet["bytes"], "hash": parquet["hash"], "schema": SCHEMA_FILE, **common})
            resources.append({
                "name": f"readings-{day.isoformat()}-csv", "type": "table", "path": csv["path"],
                "format": "csv", "compression": "gz", "mediatype": "text/csv", "encoding": "utf-8",
                "bytes": csv["bytes"], "hash": csv["hash"], "rows": r.rows, "schema": SCHEMA_FILE, **common})
        return {
            "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
            "name": "civicair-readings",
            "title": "civicair citizen air-quality readings",
            "description": ("Every reading of the civicair network, one Parquet and one CSV.gz file per UTC "
                            "day (Hive layout: readings/year=YYYY/month=MM/), sorted by station, channel, "
                            "time; pm25 is the corrected PM2.5, qc the quality bitmask. "
                            "See docs/archive.md."),
            "version": f"{schema.VERSION}.0.0",
            "licenses": [{"name": self.licence.name, "path": self.licence.path}],
            "sources": [{"title": "civicair network (volunteer-hosted low-cost PM sensors)"}],
            "contributors": [{"title": self.licence.attribution, "roles": ["creator"]}],
            "keywords": ["air quality", "PM2.5", "citizen science", "low-cost sensors"],
            # Every day up to this one is final and archived (or had no readings): not checked again.
            **({"final_through": self.final_through.isoformat()} if self.final_through else {}),
            "resources": resources,
        }

    def write_package(self, today: date) -> bool:
        """Write ``readings.schema.json`` and ``datapackage.json`` if their content changed."""
        write_atomic(self.base / SCHEMA_FILE, orjson.dumps(schema.table_schema(), option=orjson.OPT_INDENT_2))
        path = self.base / PACKAGE
        body = self.package(today)
        if path.exists():
            old = orjson.loads(path.read_bytes())
            old.pop("created", None)
            if old == orjson.loads(orjson.dumps(body)):
                return False
        body["created"] = _now_iso()
        return write_atomic(path, orjson.dumps(body, option=orjson.OPT_INDENT_2))


def load_records(path: Path) -> tuple[dict[date, DayRecord], date | None]:
    """The per-day records of an existing data package and its ``final_through`` day
    (none when there is no package yet)."""
    if not path.exists():
        return {}, None
    try:
        package = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"{path} is not valid JSON ({exc}); move it away to rebuild the archive") from exc
    records: dict[date, DayRecord] = {}
    for res in package.get("resources", []):
        if "day" not in res:
            continue
        day = date.fromisoformat(res["day"])
        kind = "parquet" if res.get("format") == "parquet" else "csv"
        r = records.setdefault(day, DayRecord(day=day, rows=0, coverage=res["coverage"],
                                              updated=res["updated"], complete=res["complete"]))
        r.rows = res.get("rows", r.rows)
        r.files[kind] = {"path": res["path"], "bytes": res["bytes"], "hash": res["hash"]}
    through = package.get("final_through")
    return ({d: r for d, r in records.items() if set(r.files) == {"parquet", "csv"}},
            date.fromisoformat(through) if through else None)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["Archive", "ArchiveError", "BuildReport", "DayRecord", "InfluxError", "Licence", "day_paths",
           "is_final", "parse_day"]
