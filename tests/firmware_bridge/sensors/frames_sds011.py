"""Nova SDS011 frames, hand-built from the datasheet: the fixtures the family's tests and
the all-family property tests (test_families.py) share."""

# Hand-built from "Laser Dust Sensor Control Protocol V1.3": AA C0, PM2.5 and PM10 as
# little-endian words in 0.1 µg/m³, device id A1 60, checksum = low byte of the sum of
# the six data bytes, AB.
# PM2.5 0x04D4 = 1236 -> 123.6, PM10 0x0A3A = 2618 -> 261.8;
# checksum D4+04+3A+0A+A1+60 = 0x21D -> 1D.
QUERY_EXAMPLE = bytes.fromhex("aa c0 d4 04 3a 0a a1 60 1d ab")
QUERY_VALUES = {"pm25_atm": 123.6, "pm10_atm": 261.8}
# PM2.5 0x007B = 123 -> 12.3, PM10 0x01C8 = 456 -> 45.6; 7B+00+C8+01+A1+60 = 0x245 -> 45.
GOLDEN = bytes.fromhex("aa c0 7b 00 c8 01 a1 60 45 ab")
GOLDEN_VALUES = {"pm25_atm": 12.3, "pm10_atm": 45.6}

# Replies (AA C5): command id, three parameter bytes, device id, checksum, AB.
REPLY_QUERY_MODE_SET = bytes.fromhex("aa c5 02 01 01 00 a1 60 05 ab")  # 02+01+01+A1+60 = 0x105
REPLY_REPORT_MODE_ACTIVE = bytes.fromhex("aa c5 02 00 00 00 a1 60 03 ab")  # a "get": 0x103
REPLY_SLEEP_SET = bytes.fromhex("aa c5 06 01 00 00 a1 60 08 ab")  # 06+01+A1+60 = 0x108
REPLY_PERIOD_1_SET = bytes.fromhex("aa c5 08 01 01 00 a1 60 0b ab")  # 08+01+01+A1+60 = 0x10B
REPLY_PERIOD_GET_5 = bytes.fromhex("aa c5 08 00 05 00 a1 60 0e ab")  # 08+05+A1+60 = 0x10E
REPLY_FIRMWARE = bytes.fromhex("aa c5 07 0f 07 0a a1 60 28 ab")  # 2015-07-10: 0x128
