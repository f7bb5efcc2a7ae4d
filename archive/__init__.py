"""The open-data archive: daily Parquet and CSV.gz files in a Hive layout, described by a
validated Frictionless data package (docs/archive.md). Reads InfluxDB through
:mod:`civicair.influx` with InfluxQL from :mod:`api.influxql`; writes only under the
archive directory."""
