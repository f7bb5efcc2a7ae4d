"""API settings: environment variables with the CIVICAIR_ prefix.

One typed class; :func:`api.app.create_app` takes an instance, so tests build apps
on settings of their own. Limits that also bound the OpenAPI schema (the largest
page, the most stations per call) have hard ceilings in :mod:`api.filters`; the
values here may only lower them.
"""

from __future__ import annotations

from pydantic import Field

from civicair.settings import OpenDataSettings


class ApiSettings(OpenDataSettings):
    """InfluxDB settings come from :class:`civicair.settings.ServerSettings`; licence,
    attribution and the archive directory from :class:`civicair.settings.OpenDataSettings`
    (shared with ``civicair archive build``)."""

    # -- limits ------------------------------------------------------------------------
    #: Largest raw page (JSON); the rest is reached by cursor paging.
    max_rows: int = Field(10_000, ge=1, le=10_000)
    #: Raw page size when a request gives no ``limit``.
    default_rows: int = Field(1_000, ge=1, le=10_000)
    #: Longest time range one request may span.
    max_range_days: int = Field(366, ge=1, le=366 * 5)
    #: Most stations one multi-station request may name or select by area.
    #: InfluxDB queries one API process runs at once; more wait for a slot ...
    influx_max_concurrent: int = Field(16, ge=1)
    #: ... this long, then get 503 "busy" with Retry-After (docs/api.md, "Limits").
    influx_queue_timeout_s: float = Field(5.0, gt=0)
    max_stations: int = Field(100, ge=1, le=100)
    #: Stations × intervals an aggregate request may return (``/measurements``, ``/aqi``).
    max_buckets: int = Field(200_000, ge=1)
    #: The same, where the rollups answer (docs/rollups.md): a year of hourly means of 100
    #: stations is 876,000.
    max_rollup_buckets: int = Field(1_000_000, ge=1)
    #: Answer ``interval=1h``/``1d`` (and /v1/aqi) from the rollups where the worker's
    #: watermark says they cover the range; ``CIVICAIR_ROLLUPS=false`` always reads raw.
    rollups: bool = True
    #: Retention policy the rollup worker writes to (the worker's ``CIVICAIR_ROLLUP_RP``).
    rollup_rp: str = Field("", pattern=r"^[A-Za-z0-9_-]*$")
    #: Most rows one streamed CSV download carries (raw readings).
    max_csv_rows: int = Field(2_000_000, ge=1)
    #: How far back ``/latest`` looks for a station's latest reading.
    latest_lookback_days: int = Field(7, ge=1, le=366)

    # -- online status -----------------------------------------------------------------
    #: A station is online while its last reading is younger than
    #: max(online_windows × its window, online_min_s).
    online_windows: int = Field(3, ge=1)
    online_min_s: int = Field(600, ge=1)

    # -- HTTP --------------------------------------------------------------------------
    #: ``Cache-Control: public, max-age=…`` on successful and client-error responses.
    cache_max_age_s: int = Field(60, ge=0)
    #: gzip level for responses over 1 KiB (1 fast … 9 small); 0 turns compression off.
    gzip_level: int = Field(5, ge=0, le=9)
    #: Seconds a response of /v1/latest, /v1/stations or /v1/aqi is served again to identical
    #: requests (one InfluxDB pass per map, not per visitor); 0 turns it off.
    response_cache_s: float = Field(10.0, ge=0)
    #: Per-client rate limit (off by default): ``rate_limit_requests`` per window.
    rate_limit_enabled: bool = False
    rate_limit_requests: int = Field(600, ge=1)
    rate_limit_window_s: int = Field(60, ge=1)
    #: Behind a reverse proxy: take the client address from the first X-Forwarded-For
    #: entry. Only enable when the proxy overwrites that header; clients can forge it.
    rate_limit_trust_forwarded: bool = False

