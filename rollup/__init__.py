"""Hourly and daily rollups of the raw readings, computed by civicair (no continuous
queries, no ``SELECT … INTO``: every InfluxDB we support), and written back as line
protocol. docs/rollups.md describes the design."""
