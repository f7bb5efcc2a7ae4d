"""Ingest settings: environment variables with the CIVICAIR_ prefix."""

from __future__ import annotations

from pydantic import Field, SecretStr

from civicair.settings import ServerSettings


class IngestSettings(ServerSettings):
    """InfluxDB settings come from :class:`civicair.settings.ServerSettings`."""

    mqtt_host: str = "localhost"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    #: Fixed client id: the broker keeps this session's queue while we are away.
    mqtt_client_id: str = "civicair-ingest"
    #: Shared-subscription group ($share/<group>/…) so that several ingest processes split
    #: the load. Empty (the default): one process on a plain persistent subscription.
    #: Why not shared by default: measured on Mosquitto 2.0.11 (Debian 12), a $share
    #: subscription of an offline persistent session is not restored after a broker
    #: restart, so readings published between the restart and the ingest's return are
    #: dropped; a plain subscription keeps them. See docs/ingest.md.
    share_group: str = ""
    session_expiry_s: int = 7 * 86400


    #: Flush when this many readings are buffered …
    batch_size: int = Field(5000, ge=1)
    #: … or when the oldest buffered message is this old.
    batch_age_s: float = Field(1.0, gt=0)
    #: MQTT 5 Receive Maximum: unacknowledged messages the broker may send us.
    #: This bounds memory while InfluxDB is down (nothing is acked then).
    receive_maximum: int = Field(10000, ge=1, le=65535)

    #: After each write, publish to every station of the batch which of its readings
    #: InfluxDB now holds (``civicair/v1/{station}/stored``, QoS 1), so that its bridge
    #: deletes them from its spool (docs/delivery.md). Off: bridges delete on the
    #: broker's PUBACK, as before.
    confirm_stored: bool = True

    #: Also take ``civicair/v1/+/meta`` and ``…/status`` (retained) into measurement ``station``.
    subscribe_station_topics: bool = True

    deadletter_path: str = "deadletter.jsonl"
    #: A message with a reading this far ahead of the ingest's clock is a dead letter (a
    #: wrong clock): stored, each would make InfluxDB open a shard for its week, and a
    #: station could make thousands. Readings less far ahead are stored and flagged.
    max_future_s: int = Field(86400, ge=300)

    #: On start, read back the newest windows of every series stored in this many
    #: seconds, so the flat-line, spike and A/B flags go on judging across a restart
    #: (see ingest/history.py). 0 turns it off.
    history_lookback_s: int = Field(86400, ge=0)

    #: Add a ``rollup_dirty`` mark per (station, hour) to each write, for the rollup
    #: worker (docs/rollups.md). ``CIVICAIR_ROLLUP_MARKS=false`` turns it off.
    rollup_marks: bool = True

    #: ``/metrics`` (Prometheus text) and ``/health`` on this port; 0 turns the server off.
    metrics_port: int = Field(9108, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"

