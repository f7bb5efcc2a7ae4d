"""Grafana dashboards as code, their provisioning files, and the commands around them.

Owns the three public dashboards (:mod:`dashboards.boards`), the Grafana JSON and
provisioning YAML built from them (``civicair dashboards build`` writes
``dashboards/json/`` and ``dashboards/provisioning/``, both committed so a review
shows what changed), the check that runs every query against an InfluxDB
(:mod:`dashboards.check`) and the publish command (:mod:`dashboards.publish`).

Queries are InfluxQL only, so the dashboards work on InfluxDB 1.x, 2.x (v1
compatibility, token header) and 3 Core. Nothing here writes to InfluxDB or touches
the ingest, the API or the bridge.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
JSON_DIR = PACKAGE_DIR / "json"
PROVISIONING_DIR = PACKAGE_DIR / "provisioning"

#: The one datasource every panel uses; both provisioning variants give it this uid.
DATASOURCE_UID = "civicair-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE_NAME = "civicair InfluxDB"
DATABASE = "airquality"
#: Grafana folder of the dashboards (provisioned and published alike).
FOLDER_UID = "civicair"
FOLDER_TITLE = "Air quality"
