"""Rollup worker settings: environment variables with the CIVICAIR_ prefix."""

from __future__ import annotations

from pydantic import Field, field_validator

from civicair.influxql import QueryError, retention_policy
from civicair.settings import ServerSettings


class RollupSettings(ServerSettings):
    """InfluxDB settings come from :class:`civicair.settings.ServerSettings`."""

    #: Seconds between two passes over the dirty marks (the rollups' delay behind the ingest).
    rollup_interval_s: float = Field(30.0, gt=0)
    #: Marks are read from ``cursor - margin``: a batch stamped by the ingest's clock may
    #: become visible a little later (writes in flight, retries, clocks apart). A write
    #: that lands later than this after its stamp is missed until a backfill.
    rollup_margin_s: int = Field(600, ge=0)
    #: Every this many seconds a pass reads all marks of the margin again (a write that
    #: became visible long after its stamp); the passes between read only the marks
    #: stamped from 30 s before the previous pass on.
    rollup_full_read_s: float = Field(60.0, ge=0)
    #: An hour still being written (marks keep coming: a replay, the current hour under
    #: load) is recomputed once its marks have been quiet this long [s] …
    rollup_quiet_s: float = Field(5.0, ge=0)
    #: … or at the latest this long after its first mark waiting [s].
    rollup_max_delay_s: float = Field(60.0, ge=0)
    #: An open hour (not yet covered: the current one, which the API reads raw) is
    #: recomputed at the latest this long after its first mark waiting [s]; it is recomputed
    #: anyway as soon as it settles (rollup_settle_s after its end). For readers of
    #: ``pm_1h`` itself (dashboards): the current hour there is at most this old.
    rollup_open_delay_s: float = Field(900.0, ge=0)
    #: ``os.nice`` increment of ``civicair rollup run``: its passes can wait, the ingest
    #: beside it on the same cores cannot (0: none).
    rollup_nice: int = Field(10, ge=0, le=19)
    #: Hours end this long before they count as covered (the last readings of an hour
    #: arrive just after it; until then the API reads that hour raw).
    rollup_settle_s: int = Field(120, ge=0)
    #: Retention policy the rollups and the worker's state are written to ("" = the
    #: database's default). With a raw retention set, name one that is kept forever.
    rollup_rp: str = ""
    #: Retention of the raw readings (the database's default policy): ``INF`` (keep
    #: forever, the default) or e.g. ``400d``. Applied by ``civicair rollup init`` (1.x).
    raw_retention: str = "INF"
    #: Stations per recompute query in a backfill.
    rollup_station_batch: int = Field(50, ge=1, le=100)
    #: ``/metrics`` and ``/health`` of the worker; 0 turns the server off.
    rollup_metrics_port: int = Field(9109, ge=0, le=65535)
    rollup_metrics_host: str = "0.0.0.0"

    @field_validator("raw_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            retention_policy("autogen", "airquality", value, False, False)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("rollup_rp")
    @classmethod
    def _rp(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "_-" for c in value):
            raise ValueError("rollup_rp: letters, digits, '_' and '-' only")
        return value
