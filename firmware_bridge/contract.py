"""Wire contract v1, as the bridge imports it: a re-export of :mod:`civicair.schema.contract`.

The contract lives in the schema package at the bottom of the tree, which the ingest
reads too; this module keeps the bridge's ``from firmware_bridge import contract``.
"""

from civicair.schema.contract import *  # noqa: F403
