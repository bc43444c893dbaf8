"""PTB persistence in the application's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from storage import codec
from storage.base import BotDatabase
from storage.batch import GroupCommit
from storage.errors import StorageError
from storage.repos.state import Kind, StateRepository, Write

DatabaseSource = BotDatabase | Callable[[], BotDatabase | Awaitable[BotDatabase]]


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Store conversation states and user/chat/bot/callback data in the bot's database.

    Every ``update_*`` call returns once its row is written, so nothing is buffered and
    :meth:`flush` has nothing to do; the Application calls them every
    ``update_interval`` seconds (0.5 s by default: a conversation state is on
    disk within a second, as the design asks) and once more at shutdown. The calls of
    one run (PTB starts them all at once) are written together, in one transaction
    (:class:`~storage.batch.GroupCommit`).

    Values are stored as tagged JSON (:mod:`storage.codec`): plain JSON types
    plus tuple, set, datetime, date, time, timedelta and Decimal round-trip;
    anything else raises ``TypeError`` when written (reported through the
    Application's error handlers). Empty ``user_data``/``chat_data`` are not
    stored at all, so users who are not inside a flow cost no row and nothing
    is loaded for them at start.

    Several workers on one PostgreSQL database share these rows. PTB reads conversation
    states only at start (its ConversationHandler keeps them in memory), so a worker must
    re-read them before each update: :meth:`conversation_states` reads one update's keys in
    one query; with ``refresh_from_database`` the ``refresh_*_data`` hooks PTB calls before
    each callback re-read that user's and chat's data too (docs/postgres.md has the plan).

    Args:
        db: The open database (:class:`~storage.db.Database` or
            :class:`~storage.postgres.PostgresDatabase`), or a callable (sync or
            async) returning it, called at first use and again whenever the
            database it returned has been closed (an app that closes and
            reopens its database on shutdown/initialize keeps working). First use is
            ``Application.initialize()``, which ``run_polling``/``run_webhook``
            run *before* ``post_init``: a database opened in ``post_init`` is
            too late, an async opener here is not.
        update_interval: Seconds between the Application's persistence runs;
            must be > 0 (0 makes PTB busy-loop, PTB issue #4472).
        store_data: Which kinds of data to persist; all by default.
        refresh_from_database: Re-read a user's and chat's data before each callback (other
            processes write them too); off for one process, whose memory is current.
    """

    def __init__(
        self,
        db: DatabaseSource,
        *,
        update_interval: float = 0.5,
        store_data: PersistenceInput | None = None,
        refresh_from_database: bool = False,
    ) -> None:
        if not (isinstance(update_interval, int | float) and math.isfinite(update_interval)):
            raise ValueError("update_interval must be a finite number of seconds")
        if update_interval <= 0:
            raise ValueError(
                "update_interval must be > 0: 0 makes PTB's persistence loop busy-wait"
            )
        super().__init__(store_data=store_data, update_interval=update_interval)
        self._db_source = db
        self._db: BotDatabase | None = None
        self._rows: tuple[BotDatabase, object] | None = None
        self._db_lock = asyncio.Lock()
        self._refresh = refresh_from_database
        # The last document written, to skip rewriting bot_data/callback_data that
        # PTB hands over unchanged on every run.
        self._written: dict[str, str] = {}
        # What each stored row holds now (this process is the only writer): PTB hands over
        # every user it saw an update from, changed or not, and most updates change nothing.
        self._stored: dict[str, dict[int, str]] = {"user": {}, "chat": {}}
        self._states: dict[tuple[str, str], str] = {}
        #: Several workers: whether this process may write a user's (or conversation's
        #: chat's) rows now, i.e. it holds that chat (tgbot.cluster). A write at another
        #: time (PTB's timer after a task it started ended) would put back an older copy
        #: over what another worker wrote meanwhile.
        self.may_write: Callable[[int], bool] | None = None
        self._writes = GroupCommit(self._write)

    async def database(self) -> BotDatabase:
        """Return the database, calling the constructor's opener if none is open."""
        if self._db is not None and not self._db.closed:
            return self._db
        if isinstance(self._db_source, BotDatabase):
            return self._db_source
        async with self._db_lock:
            if self._db is None or self._db.closed:
                result = self._db_source()
                if inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, BotDatabase):
                    raise StorageError(
                        "DatabasePersistence needs an open Database before "
                        f"Application.initialize(), got {result!r}"
                    )
                self._db = result
        return self._db

    async def rows(self) -> StateRepository:
        """Return the repository of the persisted rows, on the current database (SQLite's
        or PostgreSQL's, as :class:`storage.repos.Repositories` would build it)."""
        db = await self.database()
        if self._rows is None or self._rows[0] is not db:
            if db.dialect == "postgresql":
                from storage.postgres.repos.state import StateRepository as PostgresState

                self._rows = (db, PostgresState(db))  # type: ignore[arg-type]
            else:
                self._rows = (db, StateRepository(db))  # type: ignore[arg-type]
        return self._rows[1]  # type: ignore[return-value]

    # -- loading (Application.initialize) ------------------------------------------

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        """Return every stored user_data, keyed by user id."""
        return await self._load_rows("user")

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        """Return every stored chat_data, keyed by chat id."""
        return await self._load_rows("chat")

    async def _load_rows(self, kind: Kind) -> dict[int, dict[Any, Any]]:
        rows = await (await self.rows()).load_all(kind)
        self._stored[kind] = dict(rows)
        return {id: codec.loads(data) for id, data in rows.items()}

    async def get_bot_data(self) -> dict[Any, Any]:
        """Return the stored bot_data, or an empty dict."""
        data = await self._load_document("bot_data")
        return {} if data is None else cast(dict[Any, Any], data)

    async def get_callback_data(self) -> CDCData | None:
        """Return the stored callback data cache contents, or None if never stored."""
        data = await self._load_document("callback_data")
        if data is None:
            return None
        entries, mapping = data
        return [(uuid, float(at), payload) for uuid, at, payload in entries], mapping

    async def _load_document(self, name: str) -> Any:
        text = await (await self.rows()).load_document(name)
        if text is None:
            return None
        self._written[name] = text
        return codec.loads(text)

    async def get_conversations(self, name: str) -> ConversationDict:
        """Return the running conversations of the ConversationHandler ``name``."""
        rows = await (await self.rows()).conversations(name)
        for key, state in rows.items():
            self._states[(name, key)] = state
        return {tuple(json.loads(key)): codec.loads(state) for key, state in rows.items()}

    async def conversation_states(
        self, keys: Iterable[tuple[str, ConversationKey]]
    ) -> dict[tuple[str, ConversationKey], object]:
        """Re-read the stored states of these ``(handler name, key)`` conversations in one
        query; a conversation with no stored state (none running) is left out.

        PTB's ConversationHandler reads states from persistence only at start. Before a
        worker handles an update that another worker may have moved on, it reads that
        update's keys here and puts the states into its handlers (docs/postgres.md).
        """
        wanted = {(name, _key_json(key)): (name, key) for name, key in keys}
        rows = await (await self.rows()).conversation_states(list(wanted))
        return {wanted[pair]: codec.loads(state) for pair, state in rows.items()}

    async def running_conversations(self, name: str) -> dict[ConversationKey, object]:
        """Return the stored states of the ConversationHandler ``name``'s running
        conversations (what every worker wrote), without touching what this process holds."""
        rows = await (await self.rows()).conversations(name)
        return {tuple(json.loads(key)): codec.loads(state) for key, state in rows.items()}

    async def stored_user_data(self, user_id: int) -> dict[Any, Any]:
        """Return one user's stored user_data (empty if none), without touching this
        process's copy."""
        text = await (await self.rows()).load_one("user", user_id)
        return codec.loads(text) if text is not None else {}

    # -- writing (every update_interval and at shutdown) --------------------------

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store a conversation's new state; None (ended) deletes its row. With one writer,
        unchanged states (PTB hands over every conversation an update touched) are not
        written again; with several (refresh_from_database) every state is written."""
        if self.may_write is not None and key and not self.may_write(key[0]):  # type: ignore[arg-type]
            return
        key_json = _key_json(key)
        state = None if new_state is None else codec.dumps(new_state)
        if not self._refresh and self._states.get((name, key_json)) == state:
            return
        await self._writes.add(Write("conversation", (name, key_json), state))
        if state is None:
            self._states.pop((name, key_json), None)
        else:
            self._states[(name, key_json)] = state

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        """Store one user's user_data (an empty dict removes the row)."""
        await self._store_row("user", user_id, data)

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Store one chat's chat_data (an empty dict removes the row)."""
        await self._store_row("chat", chat_id, data)

    async def _store_row(self, kind: Kind, id: int, data: dict[Any, Any]) -> None:
        if self.may_write is not None and not self.may_write(id):
            return
        # Encode before writing, so a bad value fails without holding the lock.
        text = codec.dumps(data) if data else None
        stored = self._stored[kind]
        if not self._refresh and stored.get(id) == text:
            return  # unchanged (None == None: no row, and none needed)
        await self._writes.add(Write(kind, id, text))
        if text is None:
            stored.pop(id, None)
        else:
            stored[id] = text

    async def _write(self, writes: list[Write]) -> None:
        await (await self.rows()).store_many(writes)

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Store bot_data if it changed since it was last loaded or written."""
        await self._store_document("bot_data", data)

    async def update_callback_data(self, data: CDCData) -> None:
        """Store the callback data cache contents if they changed."""
        await self._store_document("callback_data", data)

    async def _store_document(self, name: str, data: Any) -> None:
        text = codec.dumps(data)
        if self._written.get(name) == text:
            return
        await (await self.rows()).store_document(name, text)
        self._written[name] = text

    async def drop_user_data(self, user_id: int) -> None:
        """Delete one user's user_data."""
        if self.may_write is not None and not self.may_write(user_id):
            return
        await self._writes.add(Write("user", user_id, None))
        self._stored["user"].pop(user_id, None)

    async def drop_chat_data(self, chat_id: int) -> None:
        """Delete one chat's chat_data."""
        await self._writes.add(Write("chat", chat_id, None))
        self._stored["chat"].pop(chat_id, None)

    # -- refresh ---------------------------------------------------------------------
    # One process: nobody else writes these rows, so the Application's in-memory copy is
    # always the newest and reloading it before every callback would only cost a query per
    # update. Several processes: ``refresh_from_database`` re-reads the one user and chat.

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Re-read the user's stored data into ``user_data`` (with refresh_from_database)."""
        if self._refresh:
            await self._refresh_row("user", user_id, user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Re-read the chat's stored data into ``chat_data`` (with refresh_from_database)."""
        if self._refresh:
            await self._refresh_row("chat", chat_id, chat_data)

    async def _refresh_row(self, kind: Kind, id: int, into: dict[Any, Any]) -> None:
        text = await (await self.rows()).load_one(kind, id)
        into.clear()
        if text is not None:
            into.update(codec.loads(text))

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Do nothing: bot_data is small and written by this process (not kept per user)."""

    async def flush(self) -> None:
        """Do nothing: every update was written when it was handed over.

        The database is owned and closed by the application lifecycle, not here,
        because repositories keep using it after PTB's shutdown.
        """


#: The name this class had while it stored in SQLite only (tests and callers still use it).
SQLitePersistence = DatabasePersistence


def _key_json(key: ConversationKey) -> str:
    """Return a conversation key as the JSON text it is stored under (``[chat,user]``)."""
    if all(type(part) is int for part in key):  # PTB's usual keys: written directly
        return "[" + ",".join(map(str, key)) + "]"
    return json.dumps(list(key), separators=(",", ":"))
