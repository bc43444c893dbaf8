"""What the application needs from the bot's database, whichever engine holds it.

Two implementations: :class:`storage.db.Database` (SQLite, the embedded default: one file,
one process) and :class:`storage.postgres.PostgresDatabase` (PostgreSQL, selected by
``TGBOT_DATABASE_URL``: several processes may share it). Repositories are written per
engine (:class:`storage.repos.Repositories` builds the right set); code outside ``storage``
only groups repository calls with :meth:`BotDatabase.transaction` and never writes SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

Dialect = Literal["sqlite", "postgresql"]


@runtime_checkable
class BotDatabase(Protocol):
    """An open database of the bot's own records.

    ``transaction()`` makes the repository calls inside it one atomic unit; nested in the
    same task it joins the outer one through a savepoint. The engines differ in how
    transactions of *different* tasks meet:

    - SQLite runs one write transaction at a time (a lock), so a read inside a transaction
      sees a state no other writer changes until it ends.
    - PostgreSQL runs them concurrently at READ COMMITTED. Each repository method is atomic
      on its own (one statement, or row locks), and the reads callers use to guard a write
      inside a transaction (a ticket's or broadcast's ``get``, ``still_unrelayed``) lock the
      rows they read until the transaction ends, so the same guards hold.
    """

    dialect: Dialect

    @property
    def closed(self) -> bool:
        """Whether the database was closed."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """Group repository calls into one atomic unit."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a query (in the engine's own dialect) and return its first row, or None."""
        ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query (in the engine's own dialect) and return its rows."""
        ...

    async def close(self) -> None:
        """Close the database."""
        ...


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return url.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """Return ``url`` with its password (if any) replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, host = parts.netloc.rsplit("@", 1)
    user = user_info.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
