"""Ingest settings: environment variables with the CIVICAIR_ prefix."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from civicair.influx import InfluxSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVICAIR_", extra="ignore")

    mqtt_host: str = "localhost"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    #: Fixed client id: the broker keeps this session's queue while we are away.
    mqtt_client_id: str = "civicair-ingest"
    #: Shared-subscription group; several ingest processes in one group split the load.
    #: Empty: a plain subscription.
    share_group: str = "ingest"
    session_expiry_s: int = 7 * 86400

    influx_url: str = "http://localhost:8086"
    influx_db: str = "airquality"
    influx_token: SecretStr | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None

    #: Flush when this many readings are buffered …
    batch_size: int = Field(5000, ge=1)
    #: … or when the oldest buffered message is this old.
    batch_age_s: float = Field(1.0, gt=0)
    #: MQTT 5 Receive Maximum: unacknowledged messages the broker may send us.
    #: This bounds memory while InfluxDB is down (nothing is acked then).
    receive_maximum: int = Field(10000, ge=1, le=65535)

    deadletter_path: str = "deadletter.jsonl"

    def influx(self) -> InfluxSettings:
        return InfluxSettings(
            url=self.influx_url,
            database=self.influx_db,
            token=self.influx_token.get_secret_value() if self.influx_token else None,
            username=self.influx_username,
            password=self.influx_password.get_secret_value() if self.influx_password else None,
        )
