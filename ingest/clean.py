"""Cleaning stage: derived columns the API and dashboards show.

Walking skeleton: ``pm25`` is the sensor's atmospheric PM2.5 and ``pm25_method``
says so ("atm", uncorrected). Quality flags and published corrections replace
this in the ingest issue (#4).
"""

from __future__ import annotations

import numpy as np

from ingest.columns import Batch


def clean(batch: Batch) -> Batch:
    n = len(batch)
    nan = np.full(n, np.nan)
    pm25 = batch.values.get("pm25_atm", nan)
    batch.derived["pm25"] = pm25
    batch.derived["pm25_method"] = np.where(np.isnan(pm25), "none", "atm").astype(object)
    return batch
