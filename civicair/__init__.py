"""civicair: the command line on top, the schema (civicair.schema) and the InfluxDB client
(civicair.influx, civicair.influxql) at the bottom; see docs/architecture.md for the layers.

This __init__ stays empty but for the version: every civicair module, the bridge's too, runs it.
"""

__version__ = "0.1.0"
