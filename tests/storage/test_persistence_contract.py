"""One contract for every PTB persistence: ours (on SQLite and on PostgreSQL) and PTB's own
DictPersistence.

"Reopen" means a new instance over what the old one stored: the same database
for DatabasePersistence, the old instance's ``*_json`` exports for DictPersistence.
"""

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from telegram.ext import BasePersistence, DictPersistence

from storage import BotDatabase, DatabasePersistence


class Backend:
    """Makes persistence instances of one implementation, and reopens them."""

    name: str
    rich_values = False  # round-trips datetime, Decimal, tuple... (tagged JSON)

    def make(self) -> BasePersistence:
        raise NotImplementedError

    def reopen(self, old: BasePersistence) -> BasePersistence:
        raise NotImplementedError


class DatabaseBackend(Backend):
    rich_values = True

    def __init__(self, db: BotDatabase) -> None:
        self.db = db
        self.name = db.dialect

    def make(self) -> BasePersistence:
        return DatabasePersistence(self.db)

    def reopen(self, old: BasePersistence) -> BasePersistence:
        return DatabasePersistence(self.db)


class DictBackend(Backend):
    name = "dict"

    def make(self) -> BasePersistence:
        return DictPersistence()

    def reopen(self, old: BasePersistence) -> BasePersistence:
        assert isinstance(old, DictPersistence)
        # A kind never written exports as "null", which DictPersistence cannot load back.
        kinds = ("user_data", "chat_data", "bot_data", "conversations", "callback_data")
        exports = {
            f"{kind}_json": getattr(old, f"{kind}_json")
            for kind in kinds
            if getattr(old, kind) is not None
        }
        return DictPersistence(**exports)


@pytest.fixture(params=["sqlite", "postgresql", "dict"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Return each persistence implementation in turn."""
    if request.param == "dict":
        return DictBackend()
    fixture = {"sqlite": "sqlite_db", "postgresql": "postgres_db"}[request.param]
    return DatabaseBackend(request.getfixturevalue(fixture))


async def test_fresh_persistence_is_empty(backend: Backend) -> None:
    p = backend.make()
    assert await p.get_user_data() == {}
    assert await p.get_chat_data() == {}
    assert await p.get_bot_data() == {}
    assert await p.get_callback_data() is None
    assert await p.get_conversations("refund") == {}


async def test_user_and_chat_data_survive_reopen(backend: Backend) -> None:
    p = backend.make()
    await p.update_user_data(42, {"flow": "refund", "step": 2, "tx": ["a", "b"], "ok": True})
    await p.update_chat_data(-1001, {"topic": 7, "agent": None, "rate": 0.5})
    await p.update_user_data(42, {"flow": "refund", "step": 3})  # newer value wins
    await p.flush()

    q = backend.reopen(p)
    assert await q.get_user_data() == {42: {"flow": "refund", "step": 3}}
    assert await q.get_chat_data() == {-1001: {"topic": 7, "agent": None, "rate": 0.5}}


async def test_loaded_data_is_a_copy(backend: Backend) -> None:
    p = backend.make()
    await p.update_user_data(1, {"items": [1]})
    loaded = await p.get_user_data()
    loaded[1]["items"].append(2)
    assert await backend.reopen(p).get_user_data() == {1: {"items": [1]}}


async def test_dropped_data_is_gone_after_reopen(backend: Backend) -> None:
    p = backend.make()
    await p.update_user_data(1, {"a": 1})
    await p.update_user_data(2, {"b": 2})
    await p.update_chat_data(10, {"c": 3})
    await p.drop_user_data(1)
    await p.drop_chat_data(10)
    await p.drop_user_data(999)  # unknown ids are fine
    await p.drop_chat_data(999)

    q = backend.reopen(p)
    assert await q.get_user_data() == {2: {"b": 2}}
    assert await q.get_chat_data() == {}


async def test_emptied_user_data_loads_as_empty(backend: Backend) -> None:
    p = backend.make()
    await p.update_user_data(1, {"flow": "refund"})
    await p.update_user_data(1, {})  # the flow ended and cleared its scratch
    restored = await backend.reopen(p).get_user_data()
    # Absent or empty are the same to PTB, which defaults user_data to a new dict.
    assert restored.get(1, {}) == {}


async def test_bot_data_survives_reopen(backend: Backend) -> None:
    p = backend.make()
    await p.update_bot_data({"maintenance": False, "agents": [5, 6]})
    await p.update_bot_data({"maintenance": True, "agents": [5, 6]})
    assert await backend.reopen(p).get_bot_data() == {"maintenance": True, "agents": [5, 6]}


async def test_callback_data_survives_reopen(backend: Backend) -> None:
    p = backend.make()
    data = ([("uuid-1", 1700000000.5, {"btn": {"action": "refund", "tx": "t1"}})], {"q": "uuid-1"})
    await p.update_callback_data(data)
    restored = await backend.reopen(p).get_callback_data()
    assert restored == data
    assert isinstance(restored, tuple)


async def test_conversation_states_survive_reopen(backend: Backend) -> None:
    p = backend.make()
    await p.update_conversation("refund", (42, 42), "refund:choose_tx")
    await p.update_conversation("refund", (-1001, 7, 5), 3)
    await p.update_conversation("language", (42, 42), "language:choose")
    await p.update_conversation("refund", (42, 42), "refund:confirm")

    q = backend.reopen(p)
    assert await q.get_conversations("refund") == {(42, 42): "refund:confirm", (-1001, 7, 5): 3}
    assert await q.get_conversations("language") == {(42, 42): "language:choose"}
    assert await q.get_conversations("unknown") == {}


async def test_ended_conversation_is_not_resumed(backend: Backend) -> None:
    p = backend.make()
    await p.update_conversation("refund", (42, 42), "refund:choose_tx")
    await p.update_conversation("refund", (42, 42), None)
    await p.update_conversation("refund", (1, 1), None)  # ending an unknown one is fine
    conversations = await backend.reopen(p).get_conversations("refund")
    # DictPersistence keeps the key with None, which PTB treats as "no conversation".
    assert conversations.get((42, 42)) is None
    assert conversations.get((1, 1)) is None


async def test_refresh_leaves_data_untouched(backend: Backend) -> None:
    p = backend.make()
    await p.update_user_data(1, {"stored": True})
    user_data: dict[Any, Any] = {"in_memory": True}
    chat_data: dict[Any, Any] = {"in_memory": True}
    bot_data: dict[Any, Any] = {"in_memory": True}
    await p.refresh_user_data(1, user_data)
    await p.refresh_chat_data(1, chat_data)
    await p.refresh_bot_data(bot_data)
    assert user_data == chat_data == bot_data == {"in_memory": True}


class Step(StrEnum):
    CHOOSE = "refund:choose_tx"


async def test_rich_values_round_trip(backend: Backend) -> None:
    if not backend.rich_values:
        pytest.skip(f"{backend.name} persistence stores plain JSON only")
    value = {
        "at": dt.datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC),
        "naive": dt.datetime(2025, 1, 2, 3, 4, 5),
        "day": dt.date(2025, 1, 2),
        "wait": dt.timedelta(minutes=5, microseconds=1),
        "amount": Decimal("12.30"),
        "pair": (1, "a", (2, 3)),
        "seen": {1, 2},
        "by_id": {1: "one", (2, 3): "tuple key"},
        "__t": "not a tag",
        "step": Step.CHOOSE,
    }
    p = backend.make()
    await p.update_user_data(1, value)
    await p.update_conversation("refund", (1, 1), ("nested", 1))
    q = backend.reopen(p)
    restored = (await q.get_user_data())[1]
    assert restored == value
    assert type(restored["amount"]) is Decimal and str(restored["amount"]) == "12.30"
    assert type(restored["pair"]) is tuple
    assert await q.get_conversations("refund") == {(1, 1): ("nested", 1)}
