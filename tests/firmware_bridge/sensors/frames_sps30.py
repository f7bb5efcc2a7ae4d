"""Sensirion SPS30 (SHDLC) frames, hand-built from the datasheet: the fixtures the family's tests and
the all-family property tests (test_families.py) share."""

# MISO frames: 7E ADR CMD STATE L data CHK 7E, CHK = ~(sum of ADR..data) & 0xFF.
# From the datasheet's example frames (section 5.3):
START_OK = bytes.fromhex("7e 00 00 00 00 ff 7e")
STOP_OK = bytes.fromhex("7e 00 01 00 00 fe 7e")
READ_EMPTY = bytes.fromhex("7e 00 03 00 00 fc 7e")
READ_ZEROS = bytes.fromhex("7e 00 03 00 28" + "00" * 40 + "d4 7e")
SLEEP_OK = bytes.fromhex("7e 00 10 00 00 ef 7e")
WAKE_OK_AS_PRINTED = bytes.fromhex("7e 00 11 00 00 ee 7e")  # the datasheet prints 0x11 unstuffed
FAN_CLEANING_OK = bytes.fromhex("7e 00 56 00 00 a9 7e")
INTERVAL_WRITE_OK = bytes.fromhex("7e 00 80 00 00 7f 7e")
INTERVAL_ZERO = bytes.fromhex("7e 00 80 00 04 00 00 00 00 7b 7e")
SERIAL_ZEROS = bytes.fromhex("7e 00 d0 00 15" + "30" * 20 + "00 5a 7e")
VERSION_2_1 = bytes.fromhex("7e 00 d1 00 07 02 01 00 06 00 02 00 1c 7e")
STATUS_CLEAR = bytes.fromhex("7e 00 d2 00 05 00 00 00 00 00 28 7e")
RESET_OK = bytes.fromhex("7e 00 d3 00 00 2c 7e")
# The datasheet prints checksum 0x9B for the product-type answer; the sum of
# D0 09 "00080000" 00 is 0x261, so the checksum is ~0x61 = 0x9E. The rule wins.
PRODUCT_TYPE = bytes.fromhex("7e 00 d0 00 09 30 30 30 38 30 30 30 30 00 9e 7e")

# Hand-built read-values answer, floats exactly representable in binary32:
# 1.5 2.5 3.0 3.25 µg/m³; 10.0 12.0 12.5 12.625 12.75 #/cm³; 0.5 µm. Sum 0x55C -> ~5C = A3.
GOLDEN_VALUES = {"pm1_atm": 1.5, "pm25_atm": 2.5, "pm4_atm": 3.0, "pm10_atm": 3.25,
                 "nc0_5": 10.0, "nc1_0": 12.0, "nc2_5": 12.5, "nc4_0": 12.625, "nc10_0": 12.75,
                 "tps": 0.5}
GOLDEN = bytes.fromhex(
    "7e 00 03 00 28"
    "3fc00000 40200000 40400000 40500000"
    "41200000 41400000 41480000 414a0000 414c0000"
    "3f000000"
    "a3 7e")
# The same with PM2.5 15.875 (41 7E 00 00) and tps 0.56640625 (3F 11 00 00): 7E and 11
# are stuffed as 7D 5E and 7D 31. Sum 0x55C + 0x5F + 0x11 = 0x5CC -> ~CC = 33.
STUFFED_VALUES = {**GOLDEN_VALUES, "pm25_atm": 15.875, "tps": 0.56640625}
STUFFED = bytes.fromhex(
    "7e 00 03 00 28"
    "3fc00000 417d5e0000 40400000 40500000"
    "41200000 41400000 41480000 414a0000 414c0000"
    "3f7d310000"
    "33 7e")
# Status register 0x00200010: SPEED (bit 21) and FAN (bit 4); FAN is an error, so
# bit 7 of the state byte is set. Sum D2+80+05+20+10 = 0x187 -> ~87 = 78.
STATUS_SPEED_FAN = bytes.fromhex("7e 00 d2 80 05 00 20 00 10 00 78 7e")
NOT_ALLOWED = bytes.fromhex("7e 00 00 43 00 bc 7e")  # start while measuring: state 0x43
