"""civicair ingest: MQTT readings -> cleaned columns (numpy) -> InfluxDB, in batches.

A message is acknowledged to the broker only after InfluxDB accepted every
reading in it; what cannot be decoded goes to the dead letter, never to /dev/null.
"""
