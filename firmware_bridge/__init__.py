"""civicair bridge: runs on the volunteer's Pi; serial sensor -> readings -> MQTT.

This package must import with only the ``bridge`` extra installed (pyserial,
paho-mqtt): no numpy, no web stack, anywhere under it.
"""

__version__ = "0.1.0"
