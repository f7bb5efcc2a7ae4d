"""Published PM2.5 corrections for low-cost sensors, and which reading gets which.

Owns the correction formulas (pure numpy, one function per published equation) and
the rule that routes each reading to one of them (:func:`correct`):

============================  ==========================================================
method                        readings
============================  ==========================================================
``epa_barkjohn_2021``         Plantower family with RH and ``pm25_cf1`` < 570 µg/m³
``epa_barkjohn_2022_smoke``   Plantower family with RH and ``pm25_cf1`` ≥ 570 µg/m³
``nilson_2022_kohler``        SDS011, or Plantower without ``pm25_cf1``, with RH
``uncorrected_atm``           everything else that has ``pm25_atm`` (no RH; SPS30)
``none``                      no PM2.5 value at all (``pm25`` is NaN)
============================  ==========================================================

RH counts as available when it is a number in [0, 100] % (``RH_RANGE_PCT`` of the schema;
the cleaner flags anything else OUT_OF_RANGE): a humidity sensor that reports anything
else is broken, and a correction fed a broken RH is worse than none. No correction uses
the temperature.
Corrected values are never below 0. Formulas are applied per reading (per channel);
US EPA applies them to the mean of PurpleAir's two channels, which the A/B flag in
:mod:`ingest.kernels` checks instead. Must not import anything beyond numpy, the
schema and the grouping helpers of :mod:`ingest.grouping`: no I/O, no clock.
"""

from __future__ import annotations

import numpy as np

from civicair.schema.sensors import PLANTOWER_MODELS, RH_RANGE_PCT
from ingest.columns import Batch
from ingest.grouping import Groups, lookup

# -- method codes -------------------------------------------------------------------------

NONE, EPA_2021, EPA_2022_SMOKE, NILSON_2022, UNCORRECTED = range(5)
#: ``pm25_method`` strings, indexed by method code.
METHOD_NAMES = np.array(
    ["none", "epa_barkjohn_2021", "epa_barkjohn_2022_smoke", "nilson_2022_kohler",
     "uncorrected_atm"],
    dtype=object,
)

# -- sensor families ------------------------------------------------------------------

UNKNOWN_FAMILY, PLANTOWER, SDS011, SPS30 = range(4)
FAMILY_OF_SENSOR: dict[str, int] = {
    **{model: PLANTOWER for model in PLANTOWER_MODELS}, "sds011": SDS011, "sps30": SPS30,
}


def sensor_family(sensor: np.ndarray, groups: Groups | None = None) -> np.ndarray:
    """Family code (``PLANTOWER``, ``SDS011``, ``SPS30``, ``UNKNOWN_FAMILY``) per reading.

    ``groups`` may pass a grouping of ``sensor`` already made (:func:`~ingest.grouping.factorize`).
    """
    codes = lookup(sensor, FAMILY_OF_SENSOR, default=UNKNOWN_FAMILY, groups=groups)
    return codes.astype(np.int8)


# -- US EPA (Barkjohn et al.) ---------------------------------------------------------------

#: Barkjohn et al. (2022): below this ``pm25_cf1`` the 2021 equation holds [µg/m³] …
SMOKE_BLEND_START = 570.0
#: … from this one the quadratic does; in between the two are blended [µg/m³].
SMOKE_BLEND_END = 611.0


def barkjohn_2021(pm25_cf1: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """US-wide PurpleAir correction with relative humidity.

    ``PM2.5 = 0.524 · PA_cf1 − 0.0862 · RH + 5.75``

    Barkjohn, K. K., Gantt, B., and Clements, A. L.: Development and application of a
    United States-wide correction for PM2.5 data collected with the PurpleAir sensor,
    Atmos. Meas. Tech., 14, 4617–4637, https://doi.org/10.5194/amt-14-4617-2021, 2021
    (the final US-wide model, with RH; Barkjohn et al. (2022) keep it below 570 µg/m³).

    Parameters
    ----------
    pm25_cf1 : array of float
        Plantower PM2.5 "CF=1" output [µg/m³].
    rh : array of float
        Relative humidity [%].

    Returns
    -------
    array of float
        Corrected PM2.5 [µg/m³]; not floored (see :func:`us_epa`).
    """
    return 0.524 * np.asarray(pm25_cf1, dtype=np.float64) - 0.0862 * np.asarray(rh) + 5.75


def barkjohn_2022_quadratic(pm25_cf1: np.ndarray) -> np.ndarray:
    """Extreme-smoke quadratic, without humidity.

    ``PM2.5 = 4.21×10⁻⁴ · PA_cf1² + 0.392 · PA_cf1 + 3.44``

    Barkjohn, K. K., Holder, A. L., Frederick, S. G., and Clements, A. L.: Correction
    and Accuracy of PurpleAir PM2.5 Measurements for Extreme Wildfire Smoke, Sensors,
    22, 9669, https://doi.org/10.3390/s22249669, 2022, Sect. 3.1.3 "Final Equations",
    the part for PA_cf1 ≥ 611 µg/m³ (part (3) in :func:`us_epa`). It reaches 400 µg/m³
    at PA_cf1 = 611, where the abstract's "quadratic fit above 400 µg/m³" takes over.

    Parameters
    ----------
    pm25_cf1 : array of float
        Plantower PM2.5 "CF=1" output [µg/m³].

    Returns
    -------
    array of float
        Corrected PM2.5 [µg/m³].
    """
    pm = np.asarray(pm25_cf1, dtype=np.float64)
    return 4.21e-4 * pm * pm + 0.392 * pm + 3.44


def smoke_blend_weight(pm25_cf1: np.ndarray) -> np.ndarray:
    """Weight of the quadratic between 570 and 611 µg/m³: ``0.0244 · PA_cf1 − 13.9``.

    Barkjohn et al. (2022), Sect. 3.1.3, the blend for 570 ≤ PA_cf1 < 611 µg/m³ (part
    (2) in :func:`us_epa`). As published (rounded), the weight is 0.008, not 0, at 570
    and 1.0084, not 1, at 611, so the corrected value steps a little at each join (at
    50 % RH: up 0.51 µg/m³ at 570, down 0.66 µg/m³ at 611). We keep the published
    coefficients rather than "fix" them.

    Parameters
    ----------
    pm25_cf1 : array of float
        [µg/m³]

    Returns
    -------
    array of float
        [1]
    """
    return 0.0244 * np.asarray(pm25_cf1, dtype=np.float64) - 13.9


def us_epa(pm25_cf1: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """US EPA correction with the extreme-smoke extension, floored at 0.

    Barkjohn et al. (2022), Sect. 3.1.3 "Final Equations", three parts (labelled here;
    part (1) is the Barkjohn et al. (2021) equation)::

        PA_cf1 < 570          0.524·PA − 0.0862·RH + 5.75                 (1)
        570 ≤ PA_cf1 < 611    w·(3) + (1 − w)·(1),  w = 0.0244·PA − 13.9  (2)
        PA_cf1 ≥ 611          4.21×10⁻⁴·PA² + 0.392·PA + 3.44             (3)

    Negative results (clean air at high RH) are set to 0.

    Parameters
    ----------
    pm25_cf1 : array of float
        Plantower PM2.5 "CF=1" output [µg/m³]; NaN gives NaN.
    rh : array of float
        Relative humidity [%].

    Returns
    -------
    array of float
        Corrected PM2.5 [µg/m³].
    """
    pm = np.asarray(pm25_cf1, dtype=np.float64)
    linear = barkjohn_2021(pm, rh)
    quadratic = barkjohn_2022_quadratic(pm)
    w = smoke_blend_weight(pm)
    corrected = np.select(
        [pm < SMOKE_BLEND_START, pm < SMOKE_BLEND_END, pm >= SMOKE_BLEND_END],
        [linear, w * quadratic + (1.0 - w) * linear, quadratic],
        default=np.nan,
    )
    return np.maximum(corrected, 0.0)


# -- hygroscopic growth (Nilson et al. 2022) ----------------------------------------------

#: Nilson et al. (2022) Model 2's fitted growth coefficient; κ/1.65 in the κ-Köhler form
#: of Crilley et al. (2018), i.e. a bulk hygroscopicity κ ≈ 0.40 [1].
NILSON_GROWTH = 0.24
#: Nilson et al. (2022) limit RH to [30 %, 70 %] before correcting [%].
NILSON_RH_RANGE = (30.0, 70.0)


def nilson_2022(pm25: np.ndarray, rh: np.ndarray, growth: float = NILSON_GROWTH) -> np.ndarray:
    """Hygroscopic-growth (κ-Köhler) correction, Nilson et al. (2022) Model 2.

    ``PM_corr = PM / (1 + g / (100/RH − 1))`` with ``g = 0.24`` and RH limited to
    [30, 70] %, the form of Crilley et al. (2018) ``C = 1 + (κ/1.65) / (−1 + 1/a_w)``
    with ``a_w = RH/100``, its coefficient fitted to PurpleAir ``pm25_cf1`` against
    FEM monitors. Floored at 0.

    Nilson, B., Jackson, P. L., Schiller, C. L., and Parsons, M. T.: Development and
    evaluation of correction models for a low-cost fine particulate matter monitor,
    Atmos. Meas. Tech., 15, 3315–3328, https://doi.org/10.5194/amt-15-3315-2022, 2022
    (Model 2, given in the abstract). Crilley, L. R., et al.: Evaluation of a low-cost
    optical particle counter (Alphasense OPC-N2) for ambient air monitoring, Atmos.
    Meas. Tech., 11, 709–720, https://doi.org/10.5194/amt-11-709-2018, 2018.

    Parameters
    ----------
    pm25 : array of float
        Uncorrected PM2.5 [µg/m³]; NaN gives NaN.
    rh : array of float
        Relative humidity [%]; NaN gives NaN.
    growth : float
        The growth coefficient g (κ/1.65) [1].

    Returns
    -------
    array of float
        Corrected PM2.5 [µg/m³].
    """
    rh = np.clip(np.asarray(rh, dtype=np.float64), *NILSON_RH_RANGE)
    factor = 1.0 + growth / (100.0 / rh - 1.0)
    return np.maximum(np.asarray(pm25, dtype=np.float64) / factor, 0.0)


# -- routing -----------------------------------------------------------------------------


def correct_codes(batch: Batch, family: np.ndarray | None = None, pm25_cf1: np.ndarray | None = None,
                  pm25_atm: np.ndarray | None = None, rh: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(pm25, method code)`` per reading; codes index :data:`METHOD_NAMES`.

    Parameters
    ----------
    batch : Batch
        Uses ``values["pm25_cf1"]``, ``values["pm25_atm"]``, ``values["rh"]`` (absent
        columns count as missing) and ``sensor``.
    family : array of int8, optional
        :func:`sensor_family` of ``batch.sensor``, when the caller has it already.
    pm25_cf1, pm25_atm : array of float, optional
        The PM2.5 inputs to use instead of the batch's (the cleaner passes them with
        values outside the sensor's range taken out, as NaN).
    rh : array of float, optional
        The RH to use instead of the batch's; an RH outside :data:`RH_RANGE_PCT` is
        ignored either way.

    Returns
    -------
    pm25 : array of float
        [µg/m³], NaN where the reading has no PM2.5 value.
    method : array of int8
    """
    size = len(batch)
    missing = np.full(size, np.nan)
    cf1 = batch.values.get("pm25_cf1", missing) if pm25_cf1 is None else pm25_cf1
    atm = batch.values.get("pm25_atm", missing) if pm25_atm is None else pm25_atm
    rh = batch.values.get("rh", missing) if rh is None else rh
    family = sensor_family(batch.sensor) if family is None else family

    rh_known = (rh >= RH_RANGE_PCT[0]) & (rh <= RH_RANGE_PCT[1])
    plantower = family == PLANTOWER
    epa = plantower & rh_known & ~np.isnan(cf1)
    kohler = rh_known & ~epa & ~np.isnan(atm) & (plantower | (family == SDS011))
    raw = ~epa & ~kohler & ~np.isnan(atm)

    smoke = epa & (cf1 >= SMOKE_BLEND_START)
    epa_2021 = epa & ~smoke
    # Each formula runs elementwise over the whole batch (cheaper than gathering and
    # scattering the rows of each method) and np.where picks; below the blend us_epa
    # is part (1), floored, so the same floats; the few smoke rows get us_epa itself.
    pm25 = np.where(raw, atm, np.nan)
    pm25 = np.where(kohler, nilson_2022(atm, rh), pm25)
    pm25 = np.where(epa_2021, np.maximum(barkjohn_2021(cf1, rh), 0.0), pm25)
    if smoke.any():
        pm25[smoke] = us_epa(cf1[smoke], rh[smoke])

    method = np.full(size, NONE, dtype=np.int8)  # the masks are disjoint
    for mask, code in ((epa_2021, EPA_2021), (smoke, EPA_2022_SMOKE), (kohler, NILSON_2022),
                       (raw, UNCORRECTED)):
        method += mask.view(np.int8) * np.int8(code)
    return pm25, method


def correct(batch: Batch, family: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Corrected PM2.5 and the name of the method applied, per reading.

    Returns
    -------
    pm25 : array of float
        [µg/m³], NaN where the reading has no PM2.5 value.
    method : array of object (str)
        One of :data:`METHOD_NAMES`.
    """
    pm25, method = correct_codes(batch, family)
    return pm25, METHOD_NAMES[method]
