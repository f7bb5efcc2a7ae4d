"""civicair: the command line and what the local stack shares (service harness, InfluxDB client)."""

__version__ = "0.1.0"
