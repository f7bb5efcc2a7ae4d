"""API settings: environment variables with the CIVICAIR_ prefix."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicair.influx import InfluxSettings


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVICAIR_", extra="ignore")

    influx_url: str = "http://localhost:8086"
    influx_db: str = "airquality"
    influx_token: SecretStr | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None

    licence: str = "CC-BY-4.0"
    attribution: str = "civicair contributors and volunteer station hosts"
    #: Most rows one raw request returns; the rest is reached by cursor paging.
    max_rows: int = 10000
    #: Longest time range one request may span.
    max_range_days: int = 366

    def influx(self) -> InfluxSettings:
        return InfluxSettings(
            url=self.influx_url,
            database=self.influx_db,
            token=self.influx_token.get_secret_value() if self.influx_token else None,
            username=self.influx_username,
            password=self.influx_password.get_secret_value() if self.influx_password else None,
        )
