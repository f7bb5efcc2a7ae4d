"""Plantower PMS5003 frames, hand-built from the datasheet: the fixtures the family's tests and
the all-family property tests (test_families.py) share."""

# Hand-built from the PMS5003 manual: header 42 4D, length 28, 13 words, checksum.
# Words: pm1_cf1=5 pm25_cf1=12 pm10_cf1=15 pm1_atm=4 pm25_atm=11 pm10_atm=14
#        n0_3=1203 n0_5=350 n1_0=60 n2_5=8 n5_0=2 n10_0=1 reserved=0x9100
GOLDEN = bytes.fromhex(
    "424d001c" "0005" "000c" "000f" "0004" "000b" "000e"
    "04b3" "015e" "003c" "0008" "0002" "0001" "9100" "02d6"
)
GOLDEN_VALUES = {
    "pm1_cf1": 5, "pm25_cf1": 12, "pm10_cf1": 15, "pm1_atm": 4, "pm25_atm": 11, "pm10_atm": 14,
    "n0_3": 1203, "n0_5": 350, "n1_0": 60, "n2_5": 8, "n5_0": 2, "n10_0": 1,
}
ACK_PASSIVE = bytes.fromhex("424d0004e1000174")  # reply to "passive mode", from the manual
