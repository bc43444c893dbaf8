"""Read-only figures for the admins' /stats (PostgreSQL)."""

from __future__ import annotations

import statistics
import time

from storage.postgres.db import PostgresDatabase
from storage.postgres.repos.broadcasts import _language


class StatsRepository:
    """Counts across the bot's own records."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def users(self, default_language: str) -> dict[str, int]:
        """Return users by effective language, plus active in 7 days and blocked."""
        rows = await self._db.fetchall(
            f"SELECT {_language('$1')} AS lang, COUNT(*) AS n FROM users GROUP BY lang",
            (default_language,),
        )
        result = {f"lang_{row['lang']}": row["n"] for row in rows}
        week = time.time() - 7 * 86400
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE last_seen_at >= $1) AS active, "
            "COUNT(*) FILTER (WHERE blocked) AS blocked FROM users",
            (week,),
        )
        assert row is not None
        result.update(total=row["total"], active_7d=row["active"], blocked=row["blocked"])
        return result

    async def tickets(self) -> dict[str, float | int | None]:
        """Return open/closed tickets, median first response (s) and average rating."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) FILTER (WHERE status != 'closed') AS open, "
            "COUNT(*) FILTER (WHERE status = 'closed') AS closed, "
            "AVG(rating)::float8 AS rating FROM tickets"
        )
        assert row is not None
        responses = await self._db.fetchall(
            "SELECT first_response_at - created_at AS t FROM tickets "
            "WHERE first_response_at IS NOT NULL ORDER BY id DESC LIMIT 500"
        )
        values = [r["t"] for r in responses if r["t"] is not None and r["t"] >= 0]
        return {
            "open": row["open"],
            "closed": row["closed"],
            "avg_rating": row["rating"],
            "median_first_response": statistics.median(values) if values else None,
        }

    async def refunds(self) -> int:
        """Return how many refunds users requested through the bot."""
        return int(await self._db.fetchval("SELECT COUNT(*) FROM refunds"))
