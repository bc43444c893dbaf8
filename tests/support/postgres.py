"""A throwaway PostgreSQL server for the tests, from the machine's PostgreSQL binaries.

``initdb`` into a temporary directory, the server listening on a unix socket in that
directory only (no TCP port to collide with anything), durability off (a test server's data
does not outlive the session), stopped and deleted at the end. The server refuses to run as
root, so under root it runs as the ``postgres`` user (Debian's ``postgresql`` package makes
it). Each test gets its own schema (:meth:`PostgresServer.new_schema`): a URL whose
``search_path`` names it, so the bot's tables of two tests never meet.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Where Debian (and Ubuntu) install each major version's server programs.
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"


def find_bindir() -> Path | None:
    """Return the directory of the newest ``initdb`` and ``pg_ctl`` found, or None."""
    found = [
        path
        for path in Path("/").glob(DEBIAN_BINDIRS.lstrip("/"))
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def missing_reason() -> str | None:
    """Return why no test server can start here (for a skip), or None if one can."""
    if find_bindir() is None:
        return (
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or "
            "on PATH: install Debian's postgresql package (.ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run the server as"
    return None


class PostgresServer:
    """One PostgreSQL server in a temporary directory (:meth:`start`, :meth:`stop`)."""

    port = 5432  # only names the socket file; nothing listens on TCP

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tgbot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._names = itertools.count(1)
        self._clean: list[str] = []
        self.running = False

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            # The server refuses to run as root; its files then belong to postgres.
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )

    def start(self, durable: bool = False) -> PostgresServer:
        """Create the cluster and start the server; return self.

        Args:
            durable: keep PostgreSQL's own durability settings (fsync, synchronous commit,
                full page writes), as a production server runs; a benchmark wants them, a
                test does not.
        """
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-k {self.root} -c listen_addresses='' -p {self.port} "
            "-c max_connections=300 -c shared_buffers=64MB"
        )
        if not durable:  # a test server: nothing needs to survive a crash of the machine
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        if self.running:
            self.running = False
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def postmaster_pid(self) -> int | None:
        """Return the process id of the running server (the parent of every backend)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        """Return a ``postgresql://`` URL of a database (and schema) on this server."""
        url = f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"
        return f"{url}&search_path={schema}" if schema else url

    async def new_schema(self, prefix: str = "t") -> str:
        """Create an empty schema with a new name; return a URL that works in it."""
        import asyncpg

        name = f"{prefix}_{next(self._names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE SCHEMA "{name}"')
        finally:
            await conn.close()
        return self.url(schema=name)

    async def migrated_schema(self) -> str:
        """Return the URL of a migrated schema with no rows: one given back clean by
        :meth:`give_back`, else a new one (emptying tables is faster than migrating)."""
        if self._clean:
            return self._clean.pop()
        from storage import migrate
        from storage.postgres import PostgresDatabase

        url = await self.new_schema("m")
        db = await PostgresDatabase.open(url)
        try:
            await migrate(db)
        finally:
            await db.close()
        return url

    async def give_back(self, url: str) -> None:
        """Empty a :meth:`migrated_schema` for the next test (identities restart), or drop it
        if the test changed its schema version."""
        import asyncpg

        from storage.postgres import latest_version

        conn = await asyncpg.connect(url)
        try:
            version = await conn.fetchval("SELECT MAX(version) FROM schema_migrations")
            tables = [
                row[0]
                for row in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                    "current_schema() AND table_type = 'BASE TABLE' "
                    "AND table_name != 'schema_migrations'"
                )
            ]
            if version == latest_version() and tables:
                names = ", ".join(f'"{table}"' for table in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
        if version == latest_version() and tables:
            self._clean.append(url)
        else:
            await self.drop_schema(url)

    async def drop_schema(self, url: str) -> None:
        """Drop the schema a :meth:`new_schema` URL works in, with everything in it."""
        import asyncpg

        name = url.rsplit("search_path=", 1)[1]
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await conn.close()


async def find_in_schema(url: str, needles: list[str]) -> list[str]:
    """Return ``table: needle`` for every needle found in any row of the schema a URL works
    in (each row read as text, every column: the PostgreSQL side of scanning the files)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        )
        found = []
        for (table,) in tables:
            rows = await conn.fetch(
                f'SELECT DISTINCT n FROM "{table}" AS r, unnest($1::text[]) AS n '
                "WHERE strpos(r::text, n) > 0",
                needles,
            )
            found.extend(f"{table}: {row[0]}" for row in rows)
        return found
    finally:
        await conn.close()
