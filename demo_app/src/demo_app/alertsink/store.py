"""What the sink received, kept in SQLite on a volume: it survives a restart of the sink,
and it is bounded both by the number of notifications and by their bytes (every stored
column counts). Nothing is held in memory between requests but SQLite's page cache.

What goes when a bound is reached, so that routine traffic never crowds out what matters:
- repeats first: a group that sends the same notification again and again (the Watchdog
  every few minutes, a firing alert's reminders) keeps the first of the run, when it
  started, and its newest KEEP_REPEATS; the ones between go as soon as they are surplus;
- then the oldest notification, whatever it is.
One notification may take at most 1/ROW_SHARE of the byte bound: a larger one is kept with
its content cut (its alerts and title stay), never by evicting everything else. Every
eviction is reported (on_evict), and an answer cut short by its limits says so.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

# SQLite's page cache: the store's only resident memory (negative = KiB).
CACHE_KIB = 2048
# The newest repeats kept of a run of same-status notifications of one group (the first of
# the run is kept too).
KEEP_REPEATS = 3
# A notification may take at most this share of the byte bound.
ROW_SHARE = 8
# The status prefix Alertmanager's default titles and our templates put in an email
# subject or Slack title: "[FIRING:2] ...", "[RESOLVED] ...".
TITLE_STATUS = re.compile(r"^\s*\[(FIRING|RESOLVED)(?::\d+)?\]\s*", re.IGNORECASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT NOT NULL,
  channel     TEXT NOT NULL,   -- webhook | email | slack
  receiver    TEXT NOT NULL,   -- the Alertmanager receiver (route) it came through
  status      TEXT NOT NULL,   -- firing | resolved
  grp         TEXT NOT NULL,   -- what pairs a firing notification with its resolved one
  title       TEXT NOT NULL,
  alerts      TEXT NOT NULL,   -- JSON list of the alerts it carried (webhook)
  content     TEXT NOT NULL,   -- JSON: the payload, or the parsed email
  size        INTEGER NOT NULL -- bytes of every column above, for the byte bound
);
CREATE INDEX IF NOT EXISTS by_group ON notifications (channel, receiver, grp, id);
"""


def status_of_title(title: str) -> tuple[str | None, str]:
    """("firing"|"resolved"|None, the title without its status prefix)."""
    m = TITLE_STATUS.match(title)
    if not m:
        return None, title.strip()
    return m.group(1).lower(), title[m.end():].strip()


@dataclass
class Entry:
    channel: str
    receiver: str
    status: str
    group: str
    title: str
    alerts: list[dict]
    content: dict[str, Any]


@dataclass
class Page:
    """What a query returned, and whether its limits cut it short."""
    items: list[dict]
    truncated: bool


def _row_size(row: tuple) -> int:
    return sum(len(str(v).encode()) for v in row)


class NotificationStore:
    def __init__(self, path: str | Path, max_notifications: int, max_bytes: int,
                 on_evict: Callable[[str, int], None] | None = None):
        self.max_notifications = max_notifications
        self.max_bytes = max_bytes
        self.on_evict = on_evict or (lambda reason, n: None)
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(SCHEMA)
        self.count, self.bytes = self._totals()

    def _totals(self) -> tuple[int, int]:
        n, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM notifications").fetchone()
        return int(n), int(size)

    def _row(self, e: Entry, now: str) -> tuple[tuple, int]:
        """The columns to store and their size; content cut when the row would take more
        than its share of the byte bound."""
        alerts = json.dumps(e.alerts, separators=(",", ":"))
        content = json.dumps(e.content, separators=(",", ":"))
        row = (now, e.channel, e.receiver, e.status, e.group, e.title, alerts, content)
        size = _row_size(row)
        cap = self.max_bytes // ROW_SHARE
        if size > cap:
            content = json.dumps({"cut": f"{size} bytes: more than 1/{ROW_SHARE} of the store's bound"})
            row = row[:7] + (content,)
            kept = [{k: a.get(k) for k in ("alertname", "status", "labels")} for a in e.alerts]
            while _row_size(row) > cap and kept:  # the alerts alone are too big: their labels, as many as fit
                row = row[:6] + (json.dumps(kept, separators=(",", ":")), content)
                kept = kept[: len(kept) // 2]
        return row, _row_size(row)

    def add(self, e: Entry) -> int:
        """Stores one notification, drops surplus repeats of its group, then the oldest
        until both bounds hold. Returns its id."""
        row, size = self._row(e, datetime.now(timezone.utc).isoformat())
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO notifications (received_at, channel, receiver, status, grp, title, alerts,"
                " content, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, size))
            new_id = int(cur.lastrowid)
            self.count += 1
            self.bytes += size
            self._evict(self._surplus_repeats(row), "repeat")
            while self.count > self.max_notifications or (self.bytes > self.max_bytes and self.count > 1):
                reason = "count" if self.count > self.max_notifications else "bytes"
                self._evict([self._db.execute("SELECT id, size FROM notifications ORDER BY id LIMIT 1").fetchone()],
                            reason)
        return new_id

    def _surplus_repeats(self, row: tuple) -> list[tuple[int, int]]:
        """The run of notifications of this row's group that repeat it (same status, title
        and alerts: the Watchdog every few minutes, a firing alert's reminders), newest
        first: all but its newest KEEP_REPEATS and its first."""
        _, channel, receiver, status, group, title, alerts, _ = row
        run = []
        for nid, *same, size in self._db.execute(
                "SELECT id, status, title, alerts, size FROM notifications WHERE channel = ? AND receiver = ?"
                " AND grp = ? ORDER BY id DESC", (channel, receiver, group)):
            if same != [status, title, alerts]:
                break
            run.append((nid, size))
        return run[KEEP_REPEATS:-1]

    def _evict(self, rows: list[tuple[int, int]], reason: str) -> None:
        if not rows:
            return
        self._db.executemany("DELETE FROM notifications WHERE id = ?", [(nid,) for nid, _ in rows])
        self.count -= len(rows)
        self.bytes -= sum(size for _, size in rows)
        self.on_evict(reason, len(rows))

    def notifications(self, *, channel: str | None = None, status: str | None = None,
                      receiver: str | None = None, limit: int = 100,
                      max_bytes: int = 8 * 1024 * 1024) -> Page:
        """Newest first, at most `limit` of them and about `max_bytes` of content (a
        response never holds the whole store); truncated when more matched."""
        where, args = [], []
        for column, value in (("channel", channel), ("status", status), ("receiver", receiver)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("SELECT id, received_at, channel, receiver, status, grp, title, alerts, content, size"
               " FROM notifications" + (" WHERE " + " AND ".join(where) if where else "") +
               " ORDER BY id DESC LIMIT ?")
        out, total, truncated = [], 0, False
        with self._lock:
            for row in self._db.execute(sql, (*args, limit + 1)):  # row by row: stop at the byte cap
                total += row[9]
                if len(out) == limit or (out and total > max_bytes):
                    truncated = True
                    break
                out.append({"id": row[0], "received_at": row[1], "channel": row[2], "receiver": row[3],
                            "status": row[4], "group": row[5], "title": row[6],
                            "alerts": json.loads(row[7]), "content": json.loads(row[8])})
        return Page(out, truncated)

    def close(self) -> None:
        with self._lock:
            self._db.close()
