"""Leases for duties that must run once (scheduled jobs, the broadcast feeder, the refund
poller...): one holder at a time, renewed while it works, taken over once it expires.

On SQLite the bot runs as one process per database file (:class:`storage.lock.InstanceLock`),
so every would-be holder lives in that process and the leases live in its memory; PostgreSQL
keeps them in a table shared by every worker (:mod:`storage.postgres.repos.leases`). Both
follow the same contract, tested on both.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a duty, since when, until when.

    ``token`` grows each time the lease goes to a holder that did not hold it until then (a
    fencing token): work stamped with an older token comes from a holder that lost it.
    """

    name: str
    holder: str
    token: int
    acquired_at: float
    expires_at: float


# One table of leases per open database (several Repositories over one database share it).
_TABLES: weakref.WeakKeyDictionary[Any, dict[str, Lease]] = weakref.WeakKeyDictionary()


class LeaseRepository:
    """Leases by name, in this process (see the module docstring)."""

    def __init__(self, db: Any) -> None:
        self._leases = _TABLES.setdefault(db, {})

    async def acquire(
        self, name: str, holder: str, ttl: float, now: float | None = None
    ) -> Lease | None:
        """Hold ``name`` for ``ttl`` seconds: take it if free or expired, extend it if
        ``holder`` holds it already; return the lease, or None if someone else holds it."""
        now = time.time() if now is None else now
        lease = self._leases.get(name)
        if lease is not None and lease.expires_at > now:
            if lease.holder != holder:
                return None
            lease = replace(lease, expires_at=now + ttl)
        else:
            token = 1 if lease is None else lease.token + 1
            lease = Lease(name, holder, token, now, now + ttl)
        self._leases[name] = lease
        return lease

    async def renew(
        self, name: str, holder: str, ttl: float, now: float | None = None
    ) -> Lease | None:
        """Extend a lease ``holder`` still holds; return it, or None if it was lost (expired,
        or taken over): the holder must stop the duty."""
        now = time.time() if now is None else now
        lease = self._leases.get(name)
        if lease is None or lease.holder != holder or lease.expires_at <= now:
            return None
        lease = replace(lease, expires_at=now + ttl)
        self._leases[name] = lease
        return lease

    async def release(self, name: str, holder: str, now: float | None = None) -> bool:
        """Give a lease up at once (a clean stop), so another can take it without waiting for
        it to expire; False if ``holder`` did not hold it."""
        now = time.time() if now is None else now
        lease = self._leases.get(name)
        if lease is None or lease.holder != holder or lease.expires_at <= now:
            return False
        self._leases[name] = replace(lease, expires_at=now)
        return True

    async def current(self, name: str, now: float | None = None) -> Lease | None:
        """Return the lease on ``name`` if someone holds it now."""
        now = time.time() if now is None else now
        lease = self._leases.get(name)
        return lease if lease is not None and lease.expires_at > now else None
