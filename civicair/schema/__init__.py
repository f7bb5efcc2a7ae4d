"""The vocabulary every civicair package shares, at the bottom of the import tree.

Standard library only: the bridge imports it on a Raspberry Pi that has neither numpy
nor a web stack. Nothing here does I/O, reads a clock or imports another civicair
package (``tests/test_layers.py`` enforces it).

=============  ==========================================================================
module         owns
=============  ==========================================================================
errors         the one exception hierarchy (:class:`~civicair.schema.errors.CivicairError`)
contract       wire contract v1: MQTT topics, topic kinds, the reading payload rules
sensors        datasheet facts per sensor model: family, output range, frame period
qc             the bits of the stored ``qc`` field, with their public names
storage        the InfluxDB schema: measurements, tags, fields with units and types;
               the one writer of station and status points
aqi            the US AQI table (EPA 2024) and the WHO 2021 guideline levels
timefmt        how times are written (ISO 8601, UTC with ``Z``)
nowcast        the US EPA NowCast for PM2.5
=============  ==========================================================================
"""
