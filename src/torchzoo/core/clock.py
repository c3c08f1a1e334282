"""Timestamps written into artifacts, reports and benchmark results: one format, always UTC."""

from __future__ import annotations

import datetime as dt


def utc_now() -> str:
    """Now in UTC, ISO 8601 to the second (``2026-12-01T21:56:23+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def utc_minute() -> str:
    """Now in UTC for a person to read on a page (``2026-12-01 21:56 UTC``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
