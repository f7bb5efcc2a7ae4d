"""civicair open API: read-only time series over HTTP (FastAPI).

Reads InfluxDB only through :mod:`civicair.influxql`, which builds every query from
validated identifiers and quoted literals. Nothing here writes.
"""
