"""Settings every server process shares: how to reach InfluxDB.

One typed base (pydantic-settings, ``CIVICAIR_`` environment variables) that the
ingest and the API extend, so both read the same variables the same way.
Secrets have no default and never appear in a URL.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicair.influx import InfluxSettings


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVICAIR_", extra="ignore")

    influx_url: str = "http://localhost:8086"
    influx_db: str = "airquality"
    #: InfluxDB 2.x / 3: a token, sent as ``Authorization: Token …``.
    influx_token: SecretStr | None = None
    #: InfluxDB 1.x with auth enabled: a user and password (HTTP basic).
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_timeout_s: float = Field(30.0, gt=0)

    def influx(self) -> InfluxSettings:
        return InfluxSettings(
            url=self.influx_url,
            database=self.influx_db,
            token=self.influx_token.get_secret_value() if self.influx_token else None,
            username=self.influx_username,
            password=self.influx_password.get_secret_value() if self.influx_password else None,
            timeout_s=self.influx_timeout_s,
        )


class OpenDataSettings(ServerSettings):
    """The terms and the archive the API and ``civicair archive build`` share, so both state
    the same licence and attribution and agree on where the archive lives (docs/archive.md)."""

    #: Licence of the data served (SPDX id), echoed in every response and in datapackage.json.
    licence: str = "CC-BY-4.0"
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    attribution: str = "civicair contributors and volunteer station hosts"
    #: Where ``civicair archive build`` writes ``v1/…`` and ``/v1/archive`` serves it from.
    archive_dir: Path = Path("archive")
    #: A day is final (never rebuilt, served ``immutable``) this many days after it ended:
    #: the bridge's spool keeps readings 30 days, plus a day for the ingest.
    archive_final_after_days: int = Field(31, ge=0)
