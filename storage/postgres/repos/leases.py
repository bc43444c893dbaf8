"""Leases in PostgreSQL: duties that run once in the cluster (see storage.repos.leases).

Times come from the database server's clock unless a caller passes ``now`` (tests do), so
workers on hosts whose clocks differ still agree on when a lease expires.
"""

from __future__ import annotations

from storage.postgres.db import PostgresDatabase
from storage.repos.leases import Lease

#: The current time: the caller's, else the server's.
_NOW = "COALESCE($3::float8, extract(epoch FROM clock_timestamp())::float8)"


def _lease(row) -> Lease:
    return Lease(row["name"], row["holder"], row["token"], row["acquired_at"], row["expires_at"])


class LeaseRepository:
    """Leases by name, shared by every worker on the database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def acquire(
        self, name: str, holder: str, ttl: float, now: float | None = None
    ) -> Lease | None:
        """Hold ``name`` for ``ttl`` seconds: take it if free or expired, extend it if
        ``holder`` holds it already; return the lease, or None if someone else holds it.

        One statement: of workers trying at once, exactly one gets a free lease.
        """
        row = await self._db.fetchone(
            f"WITH t AS (SELECT {_NOW} AS now) "
            "INSERT INTO leases AS l (name, holder, token, acquired_at, expires_at) "
            "SELECT $1, $2, 1, t.now, t.now + $4 FROM t "
            "ON CONFLICT (name) DO UPDATE SET "
            "token = CASE WHEN l.holder = excluded.holder AND l.expires_at > excluded.acquired_at "
            "THEN l.token ELSE l.token + 1 END, "
            "acquired_at = CASE WHEN l.holder = excluded.holder "
            "AND l.expires_at > excluded.acquired_at THEN l.acquired_at "
            "ELSE excluded.acquired_at END, "
            "holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE l.holder = excluded.holder OR l.expires_at <= excluded.acquired_at "
            "RETURNING *",
            (name, holder, now, ttl),
        )
        return _lease(row) if row else None

    async def renew(
        self, name: str, holder: str, ttl: float, now: float | None = None
    ) -> Lease | None:
        """Extend a lease ``holder`` still holds; return it, or None if it was lost (expired,
        or taken over): the holder must stop the duty."""
        row = await self._db.fetchone(
            f"WITH t AS (SELECT {_NOW} AS now) UPDATE leases SET expires_at = t.now + $4 "
            "FROM t WHERE name = $1 AND holder = $2 AND expires_at > t.now RETURNING leases.*",
            (name, holder, now, ttl),
        )
        return _lease(row) if row else None

    async def release(self, name: str, holder: str, now: float | None = None) -> bool:
        """Give a lease up at once (a clean stop), so another can take it without waiting for
        it to expire; False if ``holder`` did not hold it. The row stays: its token keeps
        growing for the next holders."""
        row = await self._db.fetchone(
            f"WITH t AS (SELECT {_NOW} AS now) UPDATE leases SET expires_at = t.now FROM t "
            "WHERE name = $1 AND holder = $2 AND expires_at > t.now RETURNING name",
            (name, holder, now),
        )
        return row is not None

    async def current(self, name: str, now: float | None = None) -> Lease | None:
        """Return the lease on ``name`` if someone holds it now."""
        row = await self._db.fetchone(
            "SELECT * FROM leases WHERE name = $1 AND expires_at > "
            "COALESCE($2::float8, extract(epoch FROM clock_timestamp())::float8)",
            (name, now),
        )
        return _lease(row) if row else None
