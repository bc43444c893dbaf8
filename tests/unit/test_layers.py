"""The import layers of docs/architecture.md: no module imports a layer above its own.

From the top: the assembly (``tgbot.app``, ``tgbot.cli``, the sandbox demo that runs the
bot), the flows (``handlers``), the services (``services``, ``tgbot.privacy``), the
foundation (the rest of ``tgbot``: context, config, i18n, outbox, backend adapters...) and
``storage``. Every import counts, also one inside a function or under ``TYPE_CHECKING``.

Inside the foundation, the wallet adapters (``tgbot.backend``) reach storage only for its
SQLite connection and migration runner: the demo wallet keeps its own database, never the
bot's repositories; and ``storage`` (the bot's records only) imports no wallet.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("tgbot", "handlers", "services", "storage")

#: Layer ranks, top first; a module may import its own layer and those below it.
ASSEMBLY, FLOWS, SERVICES, FOUNDATION, STORAGE = 4, 3, 2, 1, 0
LAYER_NAMES = {
    ASSEMBLY: "assembly",
    FLOWS: "handlers",
    SERVICES: "services",
    FOUNDATION: "foundation",
    STORAGE: "storage",
}
#: Modules (and their submodules) by layer, most specific prefix first.
PREFIXES: list[tuple[str, int]] = [
    ("tgbot.app", ASSEMBLY),
    ("tgbot.cli", ASSEMBLY),
    ("tgbot.__main__", ASSEMBLY),
    ("tgbot.sandbox.demo", ASSEMBLY),  # `tgbot demo`: builds and runs the application
    ("tgbot.sandbox.demo_web", ASSEMBLY),
    ("handlers", FLOWS),
    ("services", SERVICES),
    ("tgbot.privacy", SERVICES),  # the erasure service (a service outside services/)
    ("tgbot", FOUNDATION),
    ("storage", STORAGE),
]


#: What the wallet adapters may import of ``storage``: the connection and the migration
#: runner for the demo wallet's own database, not the bot's records.
BACKEND_MAY_USE = ("storage.db", "storage.migrations", "storage.errors")


@dataclass(frozen=True)
class Violation:
    """An import that runs against the layers."""

    module: str
    line: int
    imported: str

    def __str__(self) -> str:
        return (
            f"{self.module}:{self.line} ({LAYER_NAMES[layer_of(self.module)]}) imports "
            f"{self.imported} ({LAYER_NAMES[layer_of(self.imported)]})"
        )


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def wallet_violation(module: str, imported: str) -> bool:
    """Whether the import crosses the wall between the bot's storage and the wallet: a wallet
    adapter importing storage beyond :data:`BACKEND_MAY_USE` (the bot's repositories, its
    facade ``storage``), or storage importing a wallet adapter."""
    if _within(module, "tgbot.backend") and _within(imported, "storage"):
        return not any(_within(imported, allowed) for allowed in BACKEND_MAY_USE)
    return _within(module, "storage") and _within(imported, "tgbot.backend")


def layer_of(module: str) -> int:
    """Return the layer of a project module."""
    for prefix, layer in PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise ValueError(f"{module} is in no layer")


def module_name(root: Path, path: Path) -> str:
    """Return the dotted name of a source file under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """Return (line, module) for every project module ``path`` imports, anywhere in it."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                # `from tgbot import app` imports the module tgbot.app, not just tgbot.
                sub = f"{target}.{alias.name}"
                is_module = (root / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    root / Path(*sub.split(".")) / "__init__.py"
                ).exists()
                found.append((node.lineno, sub if is_module else target))
    return [(line, m) for line, m in found if m.split(".")[0] in PACKAGES]


def violations(root: Path) -> list[Violation]:
    """Return every import under ``root`` that goes to a layer above the importer's, or
    across the wall between the bot's storage and the wallet adapters."""
    bad = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(root, path)
            for line, imported in imported_modules(root, path):
                if layer_of(imported) > layer_of(module) or wallet_violation(module, imported):
                    bad.append(Violation(module, line, imported))
    return bad


def test_no_import_runs_against_the_layers() -> None:
    bad = violations(REPO)
    assert not bad, "imports against the layers (docs/architecture.md):\n" + "\n".join(
        map(str, bad)
    )


def test_every_module_is_in_a_layer() -> None:
    modules = [
        module_name(REPO, path)
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    ]
    assert len(modules) > 100
    assert {layer_of(m) for m in modules} == set(LAYER_NAMES)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_planted_wrong_import_is_caught(tmp_path: Path) -> None:
    """The rule can fail: each kind of wrong import in a small tree is reported."""
    root = _tree(
        tmp_path,
        {
            "tgbot/app.py": "import handlers\nfrom services import desk\n",
            "tgbot/context.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from .app import WalletApplication\n"
            ),
            "services/desk.py": "from handlers.common import MENU\n",
            "handlers/common.py": "MENU = []\n",
            "handlers/flow.py": "def f():\n    from tgbot import app\n",
            "storage/repo.py": "from tgbot.config import Config\nfrom . import db\n",
            "storage/db.py": "",
            "storage/migrations.py": "",
            "storage/repos/__init__.py": "",
            "storage/repos/wallet.py": "from tgbot.backend.demo_store import WalletStore\n",
            "tgbot/config.py": "",
            "tgbot/backend/__init__.py": "from storage import Database\n",
            "tgbot/backend/demo.py": "from storage.repos.wallet import WalletStore\n",
            "tgbot/backend/demo_store.py": (
                "from storage.db import Database\nfrom storage.migrations import migrate\n"
            ),
        },
    )
    found = {(v.module, v.imported) for v in violations(root)}
    assert found == {
        ("tgbot.context", "tgbot.app"),  # under TYPE_CHECKING too
        ("services.desk", "handlers.common"),
        ("handlers.flow", "tgbot.app"),  # inside a function too
        ("storage.repo", "tgbot.config"),
        # The wall between the bot's records and the demo wallet's own database.
        ("storage.repos.wallet", "tgbot.backend.demo_store"),
        ("tgbot.backend", "storage"),  # the facade brings the bot's repositories
        ("tgbot.backend.demo", "storage.repos.wallet"),
    }
