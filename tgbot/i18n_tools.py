"""Translation catalogs: ``tgbot i18n extract | update | compile | check``.

* ``extract`` reads the code listed in ``babel.cfg`` into ``locales/messages.pot``;
* ``update`` extracts, then merges the template into every language's ``.po`` (creating it
  if missing); the English catalog (the msgids' own language) gets msgstr = msgid;
* ``compile`` writes the ``.mo`` next to each ``.po``, refusing catalogs with Babel check
  errors, fuzzy or untranslated entries;
* ``check`` is ``compile`` without writing, plus: the catalogs match the code as it is now,
  ``{placeholders}`` and HTML tags of each translation match its msgid, and no text is over
  Telegram's limits (4096 characters a message; a msgid whose comment says ``(max N)`` gets
  N, and callback answers get such a comment automatically at extraction).

Every check is a function from a catalog to a list of :class:`Problem`, so tests run them on
the real catalogs and on small bad ones. Files are written only when their content changed
(dates aside) and locations carry no line numbers, so diffs stay small.
"""

from __future__ import annotations

import ast
import io
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Formatter

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.util import pathmatch

from .i18n import DOMAIN, LANGUAGES, LOCALES_DIR
from .text import CALLBACK_ANSWER_LIMIT, MESSAGE_LIMIT

ROOT = LOCALES_DIR.parent
MAPPING_FILE = ROOT / "babel.cfg"
TEMPLATE_FILE = LOCALES_DIR / f"{DOMAIN}.pot"
#: The language the msgids are written in: its catalog starts with msgstr = msgid.
SOURCE_LANGUAGE = "en"
PROJECT = "upay-support-bot"
COMMENT_TAGS = ("TRANSLATORS:",)
#: The comment that gives a msgid a length limit; extraction adds it to callback answers.
CALLBACK_ANSWER_COMMENT = f"TRANSLATORS: callback answer (max {CALLBACK_ANSWER_LIMIT})"
HEADER_COMMENT = (
    "# Translations of the U-Pay support bot.\n"
    "# Edit msgstr only, then run `tgbot i18n check`; see docs/translating.md."
)

_LIMIT_COMMENT = re.compile(r"\(max (\d+)\)")
_DATE_LINE = re.compile(rb'^"(?:POT-Creation-Date|PO-Revision-Date): [^"\n]*\\n"\n', re.M)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_BRACES = re.compile(r"\{[^{}]*\}")
_GETTEXT_NAMES = frozenset(DEFAULT_KEYWORDS)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog, printed as one line."""

    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


# -- reading and writing ---------------------------------------------------------------------


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def catalog_path(lang: str, locales_dir: Path = LOCALES_DIR) -> Path:
    """Return the ``.po`` file of ``lang``."""
    return locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, lang: str | None = None) -> Catalog:
    """Read a ``.po``/``.pot`` file."""
    with path.open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def render_catalog(catalog: Catalog) -> bytes:
    """Return the catalog as ``.po`` text: sorted by msgid, locations without line numbers."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, sort_output=True, include_lineno=False, ignore_obsolete=True)
    return buffer.getvalue()


def write_catalog(path: Path, catalog: Catalog) -> bool:
    """Write ``catalog`` to ``path`` unless only its dates would change; return True if written."""
    content = render_catalog(catalog)
    if path.exists() and _DATE_LINE.sub(b"", path.read_bytes()) == _DATE_LINE.sub(b"", content):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def new_catalog(lang: str | None = None) -> Catalog:
    """Return an empty catalog (a template when ``lang`` is None) with this project's header."""
    catalog = Catalog(
        locale=lang,
        domain=DOMAIN,
        header_comment=HEADER_COMMENT,
        project=PROJECT,
        version="1",
        copyright_holder="U-Pay",
        last_translator="U-Pay support bot translators",
        language_team=f"{lang or 'LANGUAGE'} translators",
        revision_date=datetime.now(UTC) if lang else None,
        fuzzy=False,
    )
    return catalog


def _key(message: Message) -> tuple[str, str | None]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid, message.context


def _short(message: Message | str) -> str:
    msgid = message if isinstance(message, str) else _key(message)[0]
    text = msgid if len(msgid) <= 60 else msgid[:57] + "..."
    return repr(text)


def _where(where: str, message: Message) -> str:
    return f"{where}:{message.lineno}" if message.lineno else where


def _messages(catalog: Catalog) -> Iterator[Message]:
    """Yield the catalog's entries without its header."""
    for message in catalog:
        if message.id:
            yield message


def _forms(message: Message) -> list[str]:
    string = message.string
    if isinstance(string, str):
        return [string]
    return list(string or [""])


# -- extraction ------------------------------------------------------------------------------


def _read_mapping(mapping: Path) -> tuple[list[tuple[str, str]], dict]:
    with mapping.open(encoding="utf-8") as fh:
        return parse_mapping_cfg(fh, str(mapping))


def extract_catalog(root: Path = ROOT, mapping: Path = MAPPING_FILE) -> Catalog:
    """Extract the messages of the code ``mapping`` lists (``babel.cfg``) into a template."""
    method_map, options_map = _read_mapping(mapping)
    tops = {pattern.split("/", 1)[0] for pattern, method in method_map if method != "ignore"}

    def only_mapped(dirpath: str) -> bool:
        relative = Path(dirpath).relative_to(root).parts
        if relative and relative[-1].startswith((".", "_")):
            return False
        return not relative or relative[0] in tops or any("*" in top for top in tops)

    files: list[str] = []

    def remember(filename: str, method: str, options: dict) -> None:
        if method == "python":
            files.append(filename)

    catalog = new_catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        root,
        method_map,
        options_map,
        keywords=DEFAULT_KEYWORDS,
        comment_tags=COMMENT_TAGS,
        callback=remember,
        directory_filter=only_mapped,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    for msgid in callback_answer_msgids(root / name for name in files):
        message = catalog.get(msgid)
        if message is not None and not any(_LIMIT_COMMENT.search(c) for c in message.auto_comments):
            message.auto_comments.append(CALLBACK_ANSWER_COMMENT)
    return catalog


def mapped_python_files(root: Path = ROOT, mapping: Path = MAPPING_FILE) -> list[Path]:
    """Return the Python files ``mapping`` sends to the Python extractor."""
    method_map, _ = _read_mapping(mapping)
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if any(part.startswith((".", "_")) and part != "__init__.py" for part in relative.parts):
            continue
        method = next((m for pattern, m in method_map if pathmatch(pattern, str(relative))), None)
        if method == "python":
            found.append(path)
    return found


def check_gettext_calls(files: Iterable[Path], root: Path = ROOT) -> list[Problem]:
    """Return gettext calls whose message is an expression with string literals inside.

    ``_(REASONS[data["reason"]])`` translates a computed message, but an extractor may take
    the literal ``"reason"`` for a msgid (Babel 2.18 did, 2.19 does not), so the template
    would depend on the Babel version. The message must be a literal or a plain name.
    """
    problems: list[Problem] = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not _is_call_to(node, _GETTEXT_NAMES):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            spec = DEFAULT_KEYWORDS[name] or (1,)
            positions = [p - 1 for p in spec if isinstance(p, int)]
            for position in positions:
                if position >= len(node.args):
                    continue
                argument = node.args[position]
                if isinstance(argument, ast.Constant | ast.Name | ast.Attribute):
                    continue
                if _is_call_to(argument, _GETTEXT_NAMES):
                    continue  # N_("...") inside: checked on its own as a call
                if any(
                    (isinstance(inner, ast.Constant) and isinstance(inner.value, str))
                    or isinstance(inner, ast.JoinedStr)
                    for inner in ast.walk(argument)
                ):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    problems.append(
                        Problem(
                            where,
                            f"{name}() of an expression with string literals "
                            f"({ast.unparse(argument)}): compute the message first and pass "
                            "a name, or an extractor may take a literal for a msgid",
                        )
                    )
    return problems


def callback_answer_msgids(files: Iterable[Path]) -> set[str]:
    """Return msgids the code passes to ``query.answer(...)`` / ``answer_callback_query``.

    Finds ``X.answer(_(...))``, ``X.answer(context._(NAME))`` and the like, where ``NAME`` is a
    module-level ``NAME = N_("...")`` in any of ``files``.
    """
    constants: dict[str, set[str]] = {}
    answers: list[ast.expr] = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                literal = _gettext_literal(node.value)
                if isinstance(target, ast.Name) and literal is not None:
                    constants.setdefault(target.id, set()).add(literal)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                position = {"answer": 0, "answer_callback_query": 1}.get(node.func.attr)
                if position is None:
                    continue
                texts = [kw.value for kw in node.keywords if kw.arg == "text"]
                if len(node.args) > position:
                    texts.append(node.args[position])
                answers.extend(texts)
    found: set[str] = set()
    for text in answers:
        while _is_call_to(text, {"format"}):
            text = text.func.value  # type: ignore[attr-defined]
        if not _is_call_to(text, _GETTEXT_NAMES) or not text.args:  # type: ignore[attr-defined]
            continue
        argument = text.args[0]  # type: ignore[attr-defined]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            found.add(argument.value)
        elif isinstance(argument, ast.Name):
            found |= constants.get(argument.id, set())
        elif isinstance(argument, ast.Attribute):
            found |= constants.get(argument.attr, set())
    return found


def _is_call_to(node: ast.expr, names: Iterable[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in names


def _gettext_literal(node: ast.expr) -> str | None:
    if _is_call_to(node, _GETTEXT_NAMES) and node.args:  # type: ignore[attr-defined]
        argument = node.args[0]  # type: ignore[attr-defined]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    return None


# -- checks ----------------------------------------------------------------------------------


def check_babel(catalog: Catalog, where: str) -> list[Problem]:
    """Return Babel's own check errors (plural form count, ``%`` format placeholders)."""
    return [
        Problem(_where(where, message), f"{error} in {_short(message)}")
        for message, errors in catalog.check()
        for error in errors
    ]


def check_complete(catalog: Catalog, where: str) -> list[Problem]:
    """Return fuzzy and untranslated entries (and a fuzzy header)."""
    problems = []
    if catalog.fuzzy:
        problems.append(Problem(where, "the header is marked fuzzy: remove the flag"))
    for message in _messages(catalog):
        if message.fuzzy:
            problems.append(
                Problem(
                    _where(where, message),
                    f"fuzzy: {_short(message)} (check the translation, then remove the flag)",
                )
            )
        if not all(_forms(message)):
            problems.append(Problem(_where(where, message), f"untranslated: {_short(message)}"))
    return problems


def check_in_sync(code: Catalog, catalog: Catalog, where: str) -> list[Problem]:
    """Return msgids of the code missing from ``catalog`` and entries the code no longer has."""
    hint = "(run `tgbot i18n update`)"
    problems = []
    for message in _messages(code):
        entry = catalog.get(*_key(message))
        if entry is None:
            problems.append(Problem(where, f"missing: {_short(message)} {hint}"))
        elif entry.id != message.id:
            problems.append(
                Problem(_where(where, entry), f"plural forms changed: {_short(message)} {hint}")
            )
    for entry in _messages(catalog):
        if code.get(*_key(entry)) is None:
            problems.append(
                Problem(_where(where, entry), f"stale: {_short(entry)} is not in the code {hint}")
            )
    return problems


def placeholders(text: str) -> set[str]:
    """Return the ``str.format`` fields of ``text`` (``{name}``, ``{amount:.2f}``)."""
    try:
        parsed = list(Formatter().parse(text))
    except ValueError:
        return set(_BRACES.findall(text)) | {"<unbalanced braces>"}
    fields = set()
    for _literal, name, spec, conversion in parsed:
        if name is not None:
            fields.add(
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
    return fields


def check_placeholders(catalog: Catalog, where: str) -> list[Problem]:
    """Return translations whose ``{placeholders}`` differ from their msgid's."""
    problems = []
    for message in _messages(catalog):
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        expected = placeholders(ids[-1])
        for index, form in enumerate(_forms(message)):
            if not form:
                continue
            found = placeholders(form)
            # Where a form of its own serves n == 1, it may leave the number out like the msgid.
            singular = index == 0 and catalog.num_plurals > 1
            if found == expected or (singular and found == placeholders(ids[0])):
                continue
            detail = []
            if missing := sorted(expected - found):
                detail.append("missing " + " ".join(missing))
            if extra := sorted(found - expected):
                detail.append("unknown " + " ".join(extra))
            label = f"msgstr[{index}]" if len(ids) > 1 else "msgstr"
            problems.append(
                Problem(
                    _where(where, message),
                    f"placeholders of {label} differ ({', '.join(detail)}) in {_short(message)}",
                )
            )
    return problems


def html_tags(text: str) -> Counter[str]:
    """Return the multiset of HTML tags of ``text``, normalized (``<a href="{url}">``)."""
    tags: Counter[str] = Counter()
    for slash, name, attributes in _TAG.findall(text):
        attributes = " ".join(attributes.split())
        tags[f"<{slash}{name.lower()}{' ' + attributes if attributes else ''}>"] += 1
    return tags


def _bare(text: str) -> set[str]:
    """Return the characters Telegram's HTML parser rejects when not escaped (``<``, ``&``)."""
    rest = _ENTITY.sub("", _TAG.sub("", text))
    return {char for char in "<&" if char in rest}


def check_html(catalog: Catalog, where: str) -> list[Problem]:
    """Return translations whose HTML tags differ from their msgid's, or with a bare < or &."""
    problems = []
    for message in _messages(catalog):
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        for index, form in enumerate(_forms(message)):
            if not form:
                continue
            source = ids[min(index, len(ids) - 1)]
            expected, found = html_tags(source), html_tags(form)
            label = f"msgstr[{index}]" if len(ids) > 1 else "msgstr"
            if expected != found:
                detail = []
                if missing := sorted((expected - found).elements()):
                    detail.append("missing " + " ".join(missing))
                if extra := sorted((found - expected).elements()):
                    detail.append("unexpected " + " ".join(extra))
                problems.append(
                    Problem(
                        _where(where, message),
                        f"HTML tags of {label} differ ({', '.join(detail)}) in {_short(message)}",
                    )
                )
            if bare := sorted(_bare(form) - _bare(source)):
                problems.append(
                    Problem(
                        _where(where, message),
                        f"{label} has a bare {' and '.join(bare)} (write &lt; / &amp;) "
                        f"in {_short(message)}",
                    )
                )
    return problems


def length_limits(catalog: Catalog) -> dict[tuple[str, str | None], int]:
    """Return the limits that comments like ``(max 200)`` set, by message key."""
    limits = {}
    for message in _messages(catalog):
        for comment in [*message.auto_comments, *message.user_comments]:
            if match := _LIMIT_COMMENT.search(comment):
                limits[_key(message)] = int(match.group(1))
    return limits


def check_lengths(
    catalog: Catalog,
    where: str,
    limits: dict[tuple[str, str | None], int] | None = None,
) -> list[Problem]:
    """Return texts over Telegram's message limit, or over a msgid's own ``(max N)`` limit.

    Args:
        catalog: the catalog to check.
        where: how problems name the catalog.
        limits: per-message limits (e.g. from the code's template); the catalog's own
            comments count too.
    """
    own = length_limits(catalog)
    problems = []
    for message in _messages(catalog):
        key = _key(message)
        limit = min(
            MESSAGE_LIMIT, own.get(key, MESSAGE_LIMIT), (limits or {}).get(key, MESSAGE_LIMIT)
        )
        forms = _forms(message)
        for index, form in enumerate(forms):
            if len(form) > limit:
                label = f"msgstr[{index}]" if len(forms) > 1 else "msgstr"
                problems.append(
                    Problem(
                        _where(where, message),
                        f"too long: {len(form)} characters, the limit is {limit} "
                        f"({label} of {_short(message)})",
                    )
                )
    return problems


def compile_problems(catalog: Catalog, where: str) -> list[Problem]:
    """Return what stops ``catalog`` from being compiled."""
    return check_babel(catalog, where) + check_complete(catalog, where)


def catalog_problems(catalog: Catalog, where: str, code: Catalog) -> list[Problem]:
    """Return everything ``tgbot i18n check`` finds in ``catalog`` against the ``code``."""
    return (
        compile_problems(catalog, where)
        + check_in_sync(code, catalog, where)
        + check_placeholders(catalog, where)
        + check_html(catalog, where)
        + check_lengths(catalog, where, length_limits(code))
    )


# -- actions ---------------------------------------------------------------------------------


def extract(root: Path = ROOT, locales_dir: Path = LOCALES_DIR) -> Catalog:
    """Write the template from the code; return it as written."""
    template_file = locales_dir / TEMPLATE_FILE.name
    changed = write_catalog(template_file, extract_catalog(root))
    template = read_catalog(template_file)
    print(
        f"{_relative(template_file)}: {len(template)} messages"
        f" ({'updated' if changed else 'unchanged'})"
    )
    return template


def merge(template: Catalog, lang: str, locales_dir: Path = LOCALES_DIR) -> Catalog:
    """Merge ``template`` into the catalog of ``lang`` (created if missing) and write it."""
    path = catalog_path(lang, locales_dir)
    catalog = read_catalog(path, lang) if path.exists() else new_catalog(lang)
    before = {_key(m) for m in _messages(catalog)}
    source = lang == SOURCE_LANGUAGE
    # The source language needs no fuzzy guesses: its translation is the new msgid itself.
    catalog.update(template, no_fuzzy_matching=source)
    if source:
        for message in _messages(catalog):
            if not any(_forms(message)):
                message.string = message.id if isinstance(message.id, str) else tuple(message.id)
    after = {_key(m) for m in _messages(catalog)}
    changed = write_catalog(path, catalog)
    fuzzy = sum(1 for m in _messages(catalog) if m.fuzzy)
    untranslated = sum(1 for m in _messages(catalog) if not all(_forms(m)))
    print(
        f"{_relative(path)}: {len(after - before)} new, {len(before - after)} removed, "
        f"{fuzzy} fuzzy, {untranslated} untranslated"
        f" ({'updated' if changed else 'unchanged'})"
    )
    return catalog


def compile_catalogs(locales_dir: Path = LOCALES_DIR, *, write: bool = True) -> list[Problem]:
    """Compile every language's ``.po`` into its ``.mo`` (none with problems is written)."""
    problems: list[Problem] = []
    for lang in LANGUAGES:
        path = catalog_path(lang, locales_dir)
        where = _relative(path)
        if not path.exists():
            problems.append(Problem(where, "missing (run `tgbot i18n update`)"))
            continue
        catalog = read_catalog(path, lang)
        found = compile_problems(catalog, where)
        problems += found
        if write and not found:
            with path.with_suffix(".mo").open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            print(f"{_relative(path.with_suffix('.mo'))}: {len(catalog)} messages")
    return problems


def check_all(root: Path = ROOT, locales_dir: Path = LOCALES_DIR) -> list[Problem]:
    """Return every problem of the template and catalogs against the code as it is now."""
    code = extract_catalog(root)
    template_file = locales_dir / TEMPLATE_FILE.name
    problems = check_gettext_calls(mapped_python_files(root), root)
    if not template_file.exists():
        problems.append(Problem(_relative(template_file), "missing (run `tgbot i18n update`)"))
    else:
        problems += check_in_sync(code, read_catalog(template_file), _relative(template_file))
    for lang in LANGUAGES:
        path = catalog_path(lang, locales_dir)
        if not path.exists():
            problems.append(Problem(_relative(path), "missing (run `tgbot i18n update`)"))
            continue
        problems += catalog_problems(read_catalog(path, lang), _relative(path), code)
    return problems


def _report(problems: list[Problem], ok: str) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s); see docs/translating.md", file=sys.stderr)
        return 1
    print(ok)
    return 0


def run_i18n(action: str) -> int:
    """Run ``tgbot i18n <action>``; return the exit code (1 if a catalog has problems)."""
    if action == "extract":
        extract()
        return 0
    if action == "update":
        template = extract()
        for lang in LANGUAGES:
            merge(template, lang)
        return 0
    if action == "compile":
        return _report(compile_catalogs(), "compiled")
    if action == "check":
        return _report(check_all(), f"OK: {len(LANGUAGES)} catalogs complete and in sync")
    print(f"unknown action {action!r}: use extract, update, compile or check", file=sys.stderr)
    return 2
