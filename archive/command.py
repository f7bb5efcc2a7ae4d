"""What ``civicair archive build`` does with its arguments: which days, on which settings.

The CLI (``civicair/cli.py``) parses; the local stack (``civicair/stack.py``) calls
:func:`build` for today's partial day; ``docker-compose.yml`` runs the CLI daily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from archive.build import DAY, Archive, ArchiveError, BuildReport, Licence
from civicair.influx import Influx
from civicair.settings import OpenDataSettings


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ArchiveError(f"--to {end} is before --from {start}")
    return [start + DAY * i for i in range((end - start).days + 1)]


def build(settings: OpenDataSettings, *, days: Sequence[date] = (), start: date | None = None,
          end: date | None = None, force: bool = False, today: date | None = None,
          progress: Callable[[date, int], None] | None = None) -> BuildReport:
    """Build the named ``days``, or ``start``…``end`` (inclusive; ``end`` defaults to
    yesterday), or else every complete day not built yet and every day that may still change.

    Raises :class:`ArchiveError` (bad day, nothing stored) or ``InfluxError`` (database
    down or failing); a day whose build fails leaves no file of its own behind.
    """
    today = today or datetime.now(UTC).date()
    if end is not None and start is None:
        raise ArchiveError("--to needs --from")
    wanted: list[date] | None = None
    if days:
        wanted = list(days)
    elif start is not None:
        wanted = days_between(start, end or max(start, today - DAY))
    licence = Licence(settings.licence, settings.licence_url, settings.attribution)
    archive = Archive(settings.archive_dir, licence,
                      final_after_days=settings.archive_final_after_days)
    with Influx(settings.influx()) as influx:
        return archive.build(influx, wanted, today=today, explicit=bool(days), force=force, progress=progress)
