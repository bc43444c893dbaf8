"""The two backends offer the same repositories: same classes, methods and parameters."""

import inspect

import pytest

import storage.repos as sqlite_repos
from storage import Repositories
from storage.postgres import repos as postgres_repos


def _signature(function) -> list[tuple[str, object, object]]:
    # Parameter names, kinds and defaults; annotations name each backend's own database.
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _public_methods(cls) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize("name", postgres_repos.__all__)
def test_each_postgres_repository_has_the_sqlite_ones_methods(name: str) -> None:
    sqlite_class = getattr(sqlite_repos, name)
    postgres_class = getattr(postgres_repos, name)
    expected = _public_methods(sqlite_class)
    found = _public_methods(postgres_class)
    assert sorted(found) == sorted(expected)
    for method, function in expected.items():
        assert _signature(found[method]) == _signature(function), f"{name}.{method}"
        assert inspect.iscoroutinefunction(found[method]) == inspect.iscoroutinefunction(
            function
        ) or inspect.isasyncgenfunction(found[method]), f"{name}.{method}"


async def test_the_facade_builds_the_repositories_of_its_database(sqlite_db, postgres_db) -> None:
    on_sqlite, on_postgres = Repositories(sqlite_db), Repositories(postgres_db)
    names = [name for name, value in vars(on_postgres).items() if name != "db"]
    assert names  # every repository the bot uses (the demo wallet's is not the bot's)
    for name in names:
        assert type(getattr(on_sqlite, name)).__module__.startswith("storage.repos.")
        assert type(getattr(on_postgres, name)).__module__.startswith("storage.postgres.repos.")
        assert type(getattr(on_sqlite, name)).__name__ == type(getattr(on_postgres, name)).__name__
    assert set(vars(on_sqlite)) == set(vars(on_postgres))


#: Tables only one engine has, and why: SQLite keeps leases in memory (one process per
#: file) and counts migrations in PRAGMA user_version; ``sqlite_sequence`` is SQLite's
#: AUTOINCREMENT bookkeeping. No ``demo_*`` table on either: the demo wallet has its own file.
_SQLITE_ONLY = {"sqlite_sequence"}
_POSTGRES_ONLY = {"leases", "schema_migrations"}


async def test_both_migrated_schemas_have_the_same_tables_and_columns(
    sqlite_db, postgres_db
) -> None:
    """A column added by a migration of one engine only (the repositories share their
    row-to-dataclass mapping) shows here, before a query on the other engine misses it."""
    on_sqlite: dict[str, set[str]] = {}
    for (table,) in await sqlite_db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
        if table in _SQLITE_ONLY:
            continue
        # table_xinfo: generated columns too (SQLite computes inbox.user_id from the payload).
        rows = await sqlite_db.fetchall("SELECT name FROM pragma_table_xinfo(?)", (table,))
        on_sqlite[table] = {row[0] for row in rows}
    on_postgres: dict[str, set[str]] = {}
    for table, column in await postgres_db.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ):
        if table not in _POSTGRES_ONLY:
            on_postgres.setdefault(table, set()).add(column)
    assert "ticket_messages" in on_sqlite and "html" in on_sqlite["ticket_messages"]
    assert on_postgres == on_sqlite
