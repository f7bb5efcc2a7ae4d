"""The eight entity sets and the in-memory catalogue they are read from.

Things, Locations, HistoricalLocations, FeaturesOfInterest, Sensors, ObservedProperties
and Datastreams are few (a handful per station): they are built from one InfluxDB round
trip (:func:`load`) and filtered, sorted and paged in memory. Observations are the stored
readings and stay in InfluxDB (:mod:`api.sta.observations`).

Pure except :func:`load`; touches no InfluxQL text (builders live in civicair/influxql.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.settings import ApiSettings
from api.sta import ids
from api.stationmeta import StationMeta
from civicair import influxql
from civicair.influx import AsyncInflux, InfluxRejected, series
from civicair.schema import contract, sensors
from civicair.schema.storage import published_position
from civicair.schema.timefmt import format_time

log = logging.getLogger("civicair.api.sta")

#: Entity set -> entity type.
SETS = {
    "Things": "Thing", "Locations": "Location", "HistoricalLocations": "HistoricalLocation",
    "Datastreams": "Datastream", "Sensors": "Sensor", "ObservedProperties": "ObservedProperty",
    "Observations": "Observation", "FeaturesOfInterest": "FeatureOfInterest",
}
TYPE_SET = {t: s for s, t in SETS.items()}

#: Navigation properties per type: name -> (target type, is a collection).
NAVIGATION: dict[str, dict[str, tuple[str, bool]]] = {
    "Thing": {"Locations": ("Location", True), "HistoricalLocations": ("HistoricalLocation", True),
              "Datastreams": ("Datastream", True)},
    "Location": {"Things": ("Thing", True), "HistoricalLocations": ("HistoricalLocation", True)},
    "HistoricalLocation": {"Thing": ("Thing", False), "Locations": ("Location", True)},
    "Datastream": {"Thing": ("Thing", False), "Sensor": ("Sensor", False),
                   "ObservedProperty": ("ObservedProperty", False), "Observations": ("Observation", True)},
    "Sensor": {"Datastreams": ("Datastream", True)},
    "ObservedProperty": {"Datastreams": ("Datastream", True)},
    "Observation": {"Datastream": ("Datastream", False), "FeatureOfInterest": ("FeatureOfInterest", False)},
    "FeatureOfInterest": {"Observations": ("Observation", True)},
}

#: Plain properties per type, in the order they are serialised.
PROPERTIES: dict[str, tuple[str, ...]] = {
    "Thing": ("name", "description", "properties"),
    "Location": ("name", "description", "encodingType", "location", "properties"),
    "HistoricalLocation": ("time",),
    "Datastream": ("name", "description", "unitOfMeasurement", "observationType", "observedArea",
                   "phenomenonTime", "resultTime", "properties"),
    "Sensor": ("name", "description", "encodingType", "metadata", "properties"),
    "ObservedProperty": ("name", "definition", "description", "properties"),
    "Observation": ("phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters"),
    "FeatureOfInterest": ("name", "description", "encodingType", "feature", "properties"),
}

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
UCUM = "http://unitsofmeasure.org/ucum.html"


@dataclass(frozen=True, slots=True)
class Property:
    key: str  # our public parameter name (civicair/influxql.py PARAMS)
    field: str  # stored field of measurement pm
    name: str  # ObservedProperty name and Datastream name (as Civil IoT Taiwan names them)
    definition: str
    description: str
    unit: dict[str, str]


_UG = {"name": "microgram per cubic meter", "symbol": "ug/m3", "definition": UCUM + "#para-30"}
#: ObservedProperties; the index is part of every Datastream and Observation id: never reorder.
OBSERVED_PROPERTIES: tuple[Property, ...] = (
    Property("pm25", "pm25", "PM2.5", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6001",
             "Mass concentration of particles up to 2.5 um, corrected for the sensor's humidity "
             "bias (parameters.correction names the method)", _UG),
    Property("pm25_raw", "pm25_atm", "PM2.5 (raw)", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6001",
             "PM2.5 as the sensor reports it (atmospheric, uncorrected)", _UG),
    Property("pm1", "pm1_atm", "PM1", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6002",
             "Mass concentration of particles up to 1 um, as the sensor reports it", _UG),
    Property("pm10", "pm10_atm", "PM10", "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/5",
             "Mass concentration of particles up to 10 um, as the sensor reports it", _UG),
    Property("rh", "rh", "Relative humidity", "http://dd.eionet.europa.eu/vocabulary/aq/meteoparameter/58",
             "Relative humidity inside the sensor housing", {"name": "percent", "symbol": "%",
                                                             "definition": UCUM + "#para-29"}),
    Property("temp", "temp", "Temperature", "http://dd.eionet.europa.eu/vocabulary/aq/meteoparameter/54",
             "Air temperature inside the sensor housing", {"name": "degree Celsius", "symbol": "Cel",
                                                           "definition": UCUM + "#para-30"}),
)
PM25, PM25_RAW, PM1, PM10, RH, TEMP = range(6)

#: Properties each sensor model measures (datasheets: Plantower PMS5003 series manual,
#: Nova Fitness SDS011 specification, Sensirion SPS30 datasheet).
MODEL_PROPERTIES: dict[str, tuple[int, ...]] = {
    **{m: (PM25, PM25_RAW, PM1, PM10) for m in ("pms5003", "pms7003", "pmsa003")},
    **{m: (PM25, PM25_RAW, PM1, PM10, RH, TEMP) for m in ("pms5003t", "pms5003st")},
    "sds011": (PM25, PM25_RAW, PM10),
    "sps30": (PM25, PM25_RAW, PM1, PM10),
}
DEFAULT_PROPERTIES = (PM25, PM25_RAW)

_PLANTOWER = "https://www.aqmd.gov/docs/default-source/aq-spec/resources-page/plantower-pms5003-manual_v2-3.pdf"
SENSOR_MODELS: dict[str, tuple[str, str]] = {  # model -> (description, datasheet)
    "pms5003": ("Plantower PMS5003 laser particle counter", _PLANTOWER),
    "pms7003": ("Plantower PMS7003 laser particle counter", _PLANTOWER),
    "pmsa003": ("Plantower PMSA003 laser particle counter", _PLANTOWER),
    "pms5003t": ("Plantower PMS5003T particle counter with temperature and humidity", _PLANTOWER),
    "pms5003st": ("Plantower PMS5003ST particle counter with formaldehyde, temperature and humidity",
                  _PLANTOWER),
    "sds011": ("Nova Fitness SDS011 laser particle sensor",
               "https://cdn-reichelt.de/documents/datenblatt/X200/SDS011-DATASHEET.pdf"),
    "sps30": ("Sensirion SPS30 particulate matter sensor",
              "https://sensirion.com/media/documents/8600FF88/616542B5/Sensirion_PM_Sensors_Datasheet_SPS30.pdf"),
}


def sensor_id(model: str) -> int:
    """1 … 7 for the contract's models (their order there), a hash above 1000 otherwise."""
    if model in contract.SENSORS:
        return contract.SENSORS.index(model) + 1
    return 1000 + ids.stable_hash(model, 1_000_000)


@dataclass(slots=True)
class Entity:
    type: str
    id: int
    props: dict[str, Any]
    station: str | None = None
    channel: str | None = None
    prop: int | None = None
    model: str | None = None
    k: int = 0  # position index (Locations, HistoricalLocations)


@dataclass(slots=True)
class Catalogue:
    """Every entity except Observations, with the indices navigation needs."""

    sets: dict[str, list[Entity]] = field(default_factory=dict)
    by_id: dict[str, dict[int, Entity]] = field(default_factory=dict)
    things: dict[str, Entity] = field(default_factory=dict)  # by station
    loaded_at: float = 0.0
    #: Rendered JSON objects by (service root, type, id): see api/sta/engine.py ``serialise``.
    rendered: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)

    #: Entities of each station by type (navigation from a Thing without scanning every set).
    by_station: dict[tuple[str, str], list[Entity]] = field(default_factory=dict)

    def add(self, entity: Entity) -> None:
        self.sets.setdefault(entity.type, []).append(entity)
        self.by_id.setdefault(entity.type, {})[entity.id] = entity
        if entity.station is not None:
            self.by_station.setdefault((entity.station, entity.type), []).append(entity)

    def of_station(self, station: str, type_: str) -> list[Entity]:
        return self.by_station.get((station, type_), [])

    def get(self, type_: str, id_: int) -> Entity | None:
        return self.by_id.get(type_, {}).get(id_)

    def all(self, type_: str) -> list[Entity]:
        return self.sets.get(type_, [])

    def datastreams_of(self, station: str) -> list[Entity]:
        return self.of_station(station, "Datastream")


@dataclass(slots=True)
class StationRows:
    """What InfluxDB knows of one station (see :func:`load`)."""

    meta: StationMeta
    meta_time: int | None = None
    positions: list[tuple[int, float, float]] = field(default_factory=list)  # (t, lat, lon), published
    #: channel -> (sensor model, last reading, first reading)
    series: dict[str, tuple[str, int, int | None]] = field(default_factory=dict)
    #: channels whose readings carry humidity / temperature (the sensor's own, or a climate
    #: companion's beside a plain PM sensor)
    with_rh: set[str] = field(default_factory=set)
    with_temp: set[str] = field(default_factory=set)


def statements(rollup_rp: str | None = None) -> str:
    """The catalogue's one request: :func:`parse` reads the first six results,
    :func:`thing_ids` the last two (the Thing id table and every known station)."""
    return influxql.statements(
        influxql.station_meta(), influxql.station_positions(), influxql.last_seen(),
        influxql.first_seen_series(), influxql.field_seen("rh"), influxql.field_seen("temp"),
        influxql.thing_ids(rollup_rp), influxql.known_stations())


def thing_ids(table_result: dict[str, Any], stations_result: dict[str, Any],
              stations: Iterable[str] = ()) -> dict[str, int]:
    """Thing id per station: the persisted table (rollup/things.py writes it), and for the
    stations not in it yet the ids the worker will give them (:func:`ids.assign`, pure).
    ``stations`` (those :func:`parse` found) joins the known ones in case the two reads
    saw different moments."""
    table = {s["tags"]["station"]: s["values"][0][1] for s in series(table_result)
             if s.get("values") and isinstance(s["values"][0][1], int)}
    known = {row[1] for s in series(stations_result) for row in s.get("values") or []}
    return ids.assign(table, known | set(stations))


def parse(results: list[dict[str, Any]]) -> dict[str, StationRows]:
    """Per station, from the results of :func:`statements` (pure)."""
    from api.stationmeta import meta_from_row

    out: dict[str, StationRows] = {}

    def rows(station: str) -> StationRows:
        return out.setdefault(station, StationRows(StationMeta(station)))

    for s in series(results[0]):
        if s.get("values"):
            station = s["tags"]["station"]
            rows(station).meta = meta_from_row(station, s["columns"], s["values"][0])
            rows(station).meta_time = s["values"][0][0]
    for s in series(results[1]):
        r = rows(s["tags"]["station"])
        for t, lat, lon, exact in s.get("values") or []:
            if type(lat) not in (int, float) or type(lon) not in (int, float):
                continue
            lat, lon = published_position(lat, lon, exact is True)
            if lat is not None and lon is not None and (not r.positions or r.positions[-1][1:] != (lat, lon)):
                r.positions.append((t, lat, lon))
    firsts = {(s["tags"]["station"], s["tags"].get("channel") or "a"): s["values"][0][0]
              for s in series(results[3]) if s.get("values")}
    for s in series(results[2]):
        tags, (t, _window) = s["tags"], s["values"][0]
        channel = tags.get("channel") or "a"
        if channel not in ids.CHANNELS:
            continue
        r = rows(tags["station"])
        known = r.series.get(channel)
        if known is None or t >= known[1]:  # a channel whose sensor was swapped: the latest model
            r.series[channel] = (tags.get("sensor") or "unknown", t,
                                 firsts.get((tags["station"], channel)))
    for result, attr in ((results[4], "with_rh"), (results[5], "with_temp")):
        for s in series(result):
            if s.get("values") and s["tags"]["station"] in out:
                getattr(out[s["tags"]["station"]], attr).add(s["tags"].get("channel") or "a")
    return out


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def unlocated(station: str) -> dict[str, Any]:
    """The position of a station that has published none: a GeoJSON Feature without a geometry
    (RFC 7946 section 3.2, an "unlocated" Feature), valid GeoJSON that invents no coordinates.
    Spatial functions treat it as matching nothing (api/sta/filter.py ``_geom``)."""
    return {"type": "Feature", "geometry": None, "properties": {"station": station}}


def _first_known_time(rows: StationRows) -> int:
    """When the station was first seen: its first reading (of any channel), else its last one
    (raw readings expired), else its latest meta, else the epoch (nothing stored has no time)."""
    firsts = [first for _, _, first in rows.series.values() if first is not None]
    lasts = [last for _, last, _ in rows.series.values()]
    return min(firsts or lasts or [rows.meta_time or 0])


def _interval(start: int | None, end: int | None) -> str | None:
    if start is None or end is None:
        return None
    return f"{format_time(start)}/{format_time(end)}"


def build(stations: dict[str, StationRows], settings: ApiSettings, now: float | None = None,
          thing_ids: dict[str, int] | None = None) -> Catalogue:
    """Every entity from :func:`parse`'s rows (pure but for the default ``now``); Thing ids
    from :func:`thing_ids` (default: numbered from 1 as if none were persisted)."""
    cat = Catalogue(loaded_at=time.time() if now is None else now)
    for index, prop in enumerate(OBSERVED_PROPERTIES):
        cat.add(Entity("ObservedProperty", index + 1, {
            "name": prop.name, "definition": prop.definition, "description": prop.description,
            "properties": {"field": prop.field, "civicairParameter": prop.key}}, prop=index))
    # The models some Datastream uses: a Sensor's Datastreams are never empty (Annex A's resource-path
    # test walks from the first Sensor to its Datastreams and on).
    models = sorted({m for r in stations.values() for m, _, _ in r.series.values()})
    for model in models:
        description, datasheet = SENSOR_MODELS.get(model, (f"{model} particle sensor", ""))
        cat.add(Entity("Sensor", sensor_id(model), {
            "name": model.upper(), "description": description,
            "encodingType": "application/pdf" if datasheet else "text/plain",
            "metadata": datasheet or f"{model}: no datasheet on file", "properties": {
                "model": model, "family": sensors.FAMILY_OF.get(model),
                "rangeMax_ug_m3": sensors.RANGE_MAX_UG_M3.get(model),
                "framePeriod_s": sensors.FRAME_PERIOD_S.get(model),
                "ratedLife_h": sensors.RATED_LIFE_HOURS.get(model)}},
            model=model))
    if thing_ids is None:
        thing_ids = ids.assign({}, stations)
    for station, rows in sorted(stations.items()):
        if station not in thing_ids:  # a station id the contract does not allow (never stored by us)
            continue
        tid, meta = thing_ids[station], rows.meta
        hardware = {ch: model for ch, (model, _, _) in sorted(rows.series.items())} or dict(meta.sensors)
        name = meta.name or station
        thing = Entity("Thing", tid, {
            "name": name,
            "description": f"civicair citizen air-quality station {station}",
            "properties": {
                # stationID: the name Civil IoT Taiwan's Things give it (pyCIOT filters on it)
                "station": station, "stationID": station, "hardware": hardware, "firmware": meta.firmware,
                "software": meta.software,
                "exactLocation": meta.exact_location, "licence": meta.licence or settings.licence,
                "licenceUrl": settings.licence_url if not meta.licence else None,
                "attribution": settings.attribution,
            }}, station=station)
        cat.add(thing)
        cat.things[station] = thing
        positions = rows.positions[-256:]
        if not positions:
            lat, lon = meta.published_position()
            if lat is not None and lon is not None:
                positions = [(rows.meta_time or 0, lat, lon)]
        for k, (t, lat, lon) in enumerate(positions):
            lid = ids.location_id(tid, k)
            cat.add(Entity("Location", lid, {
                "name": name, "description": f"Published position of station {station}"
                + ("" if meta.exact_location else " (rounded to about 100 m)"),
                "encodingType": "application/geo+json", "location": _point(lat, lon),
                "properties": {"current": k == len(positions) - 1, "positionPublished": True}},
                station=station, k=k))
            cat.add(Entity("HistoricalLocation", lid, {"time": format_time(t)}, station=station, k=k))
        if not positions:
            # Every Thing has a Location and a HistoricalLocation (Annex A walks Things(1)/Locations
            # on): one without a geometry, Location k = 0, until the station publishes a position,
            # which then takes k = 0 (docs/sensorthings.md).
            lid = ids.location_id(tid, 0)
            cat.add(Entity("Location", lid, {
                "name": name, "description": f"Station {station} has not published its position",
                "encodingType": "application/geo+json", "location": unlocated(station),
                "properties": {"current": True, "positionPublished": False}}, station=station, k=0))
            cat.add(Entity("HistoricalLocation", lid, {"time": format_time(_first_known_time(rows))},
                           station=station, k=0))
        last = positions[-1] if positions else None
        cat.add(Entity("FeatureOfInterest", tid, {
            "name": name, "description": f"The air at station {station}"
            + ("" if last else " (position not published)"),
            "encodingType": "application/geo+json",
            "feature": _point(last[1], last[2]) if last else unlocated(station),
            "properties": {"station": station}},
            station=station))
        for channel, (model, last_t, first_t) in sorted(rows.series.items()):
            measured = set(MODEL_PROPERTIES.get(model, DEFAULT_PROPERTIES))
            measured |= {RH} if channel in rows.with_rh else set()
            measured |= {TEMP} if channel in rows.with_temp else set()
            for p in sorted(measured):
                prop = OBSERVED_PROPERTIES[p]
                window = _interval(first_t, last_t)
                cat.add(Entity("Datastream", ids.datastream_id(tid, channel, p), {
                    "name": prop.name,
                    "description": f"{prop.name} at {name}, channel {channel}",
                    "unitOfMeasurement": dict(prop.unit), "observationType": OM_MEASUREMENT,
                    # No position: none (an optional property; a Feature is no geometry, and
                    # FROST's client rejects a geometry without coordinates here).
                    "observedArea": _point(last[1], last[2]) if last else None,
                    "phenomenonTime": window, "resultTime": window,
                    "properties": {"station": station, "channel": channel, "sensor": model,
                                   "field": prop.field}},
                    station=station, channel=channel, prop=p, model=model))
    for type_ in cat.sets:
        cat.sets[type_].sort(key=lambda e: e.id)
    for entities in cat.by_station.values():
        entities.sort(key=lambda e: e.id)
    return cat


async def load(influx: AsyncInflux, settings: ApiSettings) -> Catalogue:
    try:
        results = await influx.query(statements(settings.rollup_rp or None))
    except InfluxRejected as exc:
        if not settings.rollup_rp:
            raise
        # (Within several statements InfluxDB 1.x reports a missing policy only as "not executed".)
        # The named rollups' policy does not exist yet (`civicair rollup init` creates it):
        # no Thing id is stored, so every station gets the ids the worker will give it.
        log.warning("Thing id table unreadable in retention policy %r, numbering stations "
                    "as the rollup worker will: %s", settings.rollup_rp, exc)
        results = await influx.query(statements())
        results[6] = {}
    stations = parse(results)
    return build(stations, settings, thing_ids=thing_ids(results[6], results[7], stations))
