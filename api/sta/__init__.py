"""OGC SensorThings API 1.1 (read-only, OGC 18-088) over the same InfluxDB as /v1.

Split by concern: :mod:`ids` (integer ids derived from station, channel, property and
time), :mod:`model` (the entity sets and the catalogue built from InfluxDB),
:mod:`paths` (resource paths), :mod:`options` (query options), :mod:`filter` (the
``$filter`` grammar, its evaluator on the catalogue and its InfluxQL compiler),
:mod:`observations` (Observation queries), :mod:`engine` (resolving a request) and
:mod:`router` (the FastAPI route, mounted at ``/sta/v1.1``). docs/sensorthings.md
maps our schema onto the entities.
"""
