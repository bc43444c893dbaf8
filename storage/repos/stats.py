"""Read-only figures for the admins' /stats (one query each, no table scans of messages)."""

from __future__ import annotations

import statistics
import time

from storage.db import Database


class StatsRepository:
    """Counts across the bot's own records."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def users(self, default_language: str) -> dict[str, int]:
        """Return users by effective language, plus active in 7 days and blocked."""
        rows = await self._db.fetchall(
            "SELECT COALESCE(language, CASE WHEN lower(telegram_language) LIKE 'zh%' "
            "THEN 'zh_Hans' WHEN lower(telegram_language) LIKE 'en%' THEN 'en' ELSE ? END) "
            "AS lang, COUNT(*) AS n FROM users GROUP BY lang",
            (default_language,),
        )
        result = {f"lang_{row['lang']}": row["n"] for row in rows}
        week = time.time() - 7 * 86400
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS total, SUM(last_seen_at >= ?) AS active, SUM(blocked) AS blocked "
            "FROM users",
            (week,),
        )
        result.update(
            total=row["total"] or 0, active_7d=row["active"] or 0, blocked=row["blocked"] or 0
        )
        return result

    async def tickets(self) -> dict[str, float | int | None]:
        """Return open/closed tickets, median first response (s) and average rating."""
        row = await self._db.fetchone(
            "SELECT SUM(status != 'closed') AS open, SUM(status = 'closed') AS closed, "
            "AVG(rating) AS rating FROM tickets"
        )
        responses = await self._db.fetchall(
            "SELECT first_response_at - created_at AS t FROM tickets "
            "WHERE first_response_at IS NOT NULL ORDER BY id DESC LIMIT 500"
        )
        values = [r["t"] for r in responses if r["t"] is not None and r["t"] >= 0]
        return {
            "open": row["open"] or 0,
            "closed": row["closed"] or 0,
            "avg_rating": row["rating"],
            "median_first_response": statistics.median(values) if values else None,
        }

    async def refunds(self) -> int:
        """Return how many refunds users requested through the bot."""
        row = await self._db.fetchone("SELECT COUNT(*) AS n FROM refunds")
        return row["n"] if row else 0
