"""What the sink received, kept in SQLite on a volume: it survives a restart of the sink,
and it is bounded both by the number of notifications and by their bytes (the oldest go
first). Nothing is held in memory between requests but SQLite's page cache.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# SQLite's page cache: the store's only resident memory (negative = KiB).
CACHE_KIB = 2048
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
  size        INTEGER NOT NULL -- bytes of alerts + content, for the byte bound
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


class NotificationStore:
    def __init__(self, path: str | Path, max_notifications: int, max_bytes: int):
        self.max_notifications = max_notifications
        self.max_bytes = max_bytes
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

    def add(self, e: Entry) -> int:
        """Stores one notification, then drops the oldest until both bounds hold.
        Returns its id."""
        alerts = json.dumps(e.alerts, separators=(",", ":"))
        content = json.dumps(e.content, separators=(",", ":"))
        size = len(alerts.encode()) + len(content.encode())
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO notifications (received_at, channel, receiver, status, grp, title, alerts,"
                " content, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, e.channel, e.receiver, e.status, e.group, e.title, alerts, content, size))
            new_id = int(cur.lastrowid)
            self.count += 1
            self.bytes += size
            while self.count > self.max_notifications or (self.bytes > self.max_bytes and self.count > 1):
                oldest = self._db.execute("SELECT id, size FROM notifications ORDER BY id LIMIT 1").fetchone()
                self._db.execute("DELETE FROM notifications WHERE id = ?", (oldest[0],))
                self.count -= 1
                self.bytes -= oldest[1]
        return new_id

    def notifications(self, *, channel: str | None = None, status: str | None = None,
                      receiver: str | None = None, limit: int = 100,
                      max_bytes: int = 8 * 1024 * 1024) -> list[dict]:
        """Newest first, at most `limit` of them and about `max_bytes` of content (a
        response never holds the whole store)."""
        where, args = [], []
        for column, value in (("channel", channel), ("status", status), ("receiver", receiver)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("SELECT id, received_at, channel, receiver, status, grp, title, alerts, content, size"
               " FROM notifications" + (" WHERE " + " AND ".join(where) if where else "") +
               " ORDER BY id DESC LIMIT ?")
        out, total = [], 0
        with self._lock:
            for row in self._db.execute(sql, (*args, limit)):  # row by row: stop at the byte cap
                total += row[9]
                if out and total > max_bytes:
                    break
                out.append({"id": row[0], "received_at": row[1], "channel": row[2], "receiver": row[3],
                            "status": row[4], "group": row[5], "title": row[6],
                            "alerts": json.loads(row[7]), "content": json.loads(row[8])})
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
