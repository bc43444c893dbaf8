"""Telegram's HTML formatting subset turned into plain text and UTF-16 based entities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED = {*_SIMPLE_TAGS, "a", "tg-emoji", "blockquote"}
# tdlib's order for entities covering the same range: outer (lower) first.
_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_SPACE = " \t\r\n\f\v"
_MARKUP_RE = re.compile(r"[<&]")
_BOT_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")


class EntityParseError(Exception):
    """HTML Telegram refuses; the message is Telegram's wording after "can't parse entities:"."""


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, Telegram's offset unit."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int
    entity_count: int


def _decode_entity(source: str, pos: int) -> tuple[str, int] | None:
    match = _ENTITY_RE.match(source, pos)
    if not match:
        return None
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        if char is None:
            return None
        return char, match.end()
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _byte_offset(source: str, pos: int) -> int:
    return len(source[:pos].encode("utf-8"))


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (plain text, entities), as Telegram does.

    Raises:
        EntityParseError: the markup is invalid; the text matches Telegram's description.
    """
    # A plain str: a markupsafe.Markup (the bot's escaped text, in-process) would make every
    # index below a new Markup object.
    source = str(source)
    text: list[str] = []
    offset = 0  # UTF-16 units emitted so far
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                text.append(decoded[0])
                offset += utf16_len(decoded[0])
                i = decoded[1]
                continue
        if char != "<":
            # Plain text up to the next tag or entity, in one piece.
            found = _MARKUP_RE.search(source, i + 1)
            end = found.start() if found else n
            chunk = source[i:end]
            text.append(chunk)
            offset += utf16_len(chunk)
            i = end
            continue
        begin = i
        if i + 1 < n and source[i + 1] == "/":
            i = _close_tag(source, begin, stack, entities, offset, text)
        else:
            i, opened = _open_tag(source, begin)
            opened.offset = offset
            opened.entity_count = len(entities)
            stack.append(opened)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    plain = "".join(text)
    entities.sort(key=lambda e: (e["offset"], -e["length"], _PRIORITY.get(e["type"], 50)))
    return plain, entities


def _open_tag(source: str, begin: int) -> tuple[int, _Open]:
    n = len(source)
    i = begin + 1
    name_start = i
    while i < n and source[i] not in _SPACE and source[i] != ">":
        i += 1
    if i >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
    tag = source[name_start:i].lower()
    if tag not in _SUPPORTED:
        raise EntityParseError(
            f'Unsupported start tag "{tag}" at byte offset {_byte_offset(source, begin)}'
        )
    argument = ""
    while i < n and source[i] != ">":
        while i < n and source[i] in _SPACE:
            i += 1
        if i < n and source[i] == ">":
            break
        attr_start = i
        while i < n and source[i] not in _SPACE and source[i] not in "=>":
            i += 1
        attribute = source[attr_start:i].lower()
        while i < n and source[i] in _SPACE:
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Unclosed start tag at byte offset {_byte_offset(source, begin)}"
            )
        if not attribute:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset '
                f"{_byte_offset(source, begin)}"
            )
        value = ""
        if source[i] == "=":
            i += 1
            while i < n and source[i] in _SPACE:
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(source, begin)}"
                )
            if source[i] in "'\"":
                quote = source[i]
                i += 1
                chars: list[str] = []
                while i < n and source[i] != quote:
                    decoded = _decode_entity(source, i) if source[i] == "&" else None
                    if decoded is not None:
                        chars.append(decoded[0])
                        i = decoded[1]
                    else:
                        chars.append(source[i])
                        i += 1
                if i < n:
                    i += 1
                value = "".join(chars)
            else:
                token_start = i
                while i < n and (source[i].isalnum() or source[i] in ".-"):
                    i += 1
                if i < n and source[i] not in _SPACE and source[i] != ">":
                    raise EntityParseError(
                        "Unexpected end of name token at byte offset "
                        f"{_byte_offset(source, token_start)}"
                    )
                value = source[token_start:i].lower()
        elif attribute != "expandable" and source[i] != ">":
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(source, begin)}"
            )
        if i >= n:
            raise EntityParseError(
                f"Unclosed start tag at byte offset {_byte_offset(source, begin)}"
            )
        if tag == "a" and attribute == "href":
            argument = value
        elif tag == "code" and attribute == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and attribute == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif tag == "tg-emoji" and attribute == "emoji-id":
            argument = value
        elif tag == "blockquote" and attribute == "expandable":
            argument = "1"
    if tag == "span" and argument != "spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(source, begin)}'
        )
    return i + 1, _Open(tag, argument, 0, 0)


def _close_tag(
    source: str,
    begin: int,
    stack: list[_Open],
    entities: list[dict[str, Any]],
    offset: int,
    text: list[str],
) -> int:
    n = len(source)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(source, begin)}")
    i = begin + 2
    name_start = i
    while i < n and source[i] not in _SPACE and source[i] != ">":
        i += 1
    end_name = source[name_start:i].lower()
    while i < n and source[i] in _SPACE:
        i += 1
    if i >= n or source[i] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(source, begin)}")
    opened = stack[-1]
    if end_name and end_name != opened.tag:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(source, begin)}, "
            f'expected "</{opened.tag}>", found "</{end_name}>"'
        )
    stack.pop()
    length = offset - opened.offset
    if length > 0:
        entity = _make_entity(opened, length, entities, "".join(text), offset)
        if entity is not None:
            entities.append(entity)
    return i + 1


def _make_entity(
    opened: _Open, length: int, entities: list[dict[str, Any]], text: str, end_offset: int
) -> dict[str, Any] | None:
    entity: dict[str, Any] = {"offset": opened.offset, "length": length}
    tag = opened.tag
    if tag == "a":
        url = opened.argument or _utf16_slice(text, opened.offset, end_offset)
        if not url.strip():
            return None
        entity.update(type="text_link", url=url)
    elif tag == "tg-emoji":
        entity.update(type="custom_emoji", custom_emoji_id=opened.argument)
    elif tag == "blockquote":
        entity["type"] = "expandable_blockquote" if opened.argument else "blockquote"
    elif tag == "pre":
        entity["type"] = "pre"
        # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
        inner = entities[opened.entity_count :]
        for candidate in inner:
            if (
                candidate["type"] == "code"
                and candidate["offset"] == opened.offset
                and candidate["length"] == length
                and candidate.get("language")
            ):
                entity["language"] = candidate["language"]
                entities.remove(candidate)
                break
    elif tag == "code":
        entity["type"] = "code"
        if opened.argument:
            entity["language"] = opened.argument
    else:
        entity["type"] = _SIMPLE_TAGS[tag]
    return entity


def _utf16_slice(text: str, start: int, end: int) -> str:
    encoded = text.encode("utf-16-le")
    return encoded[start * 2 : end * 2].decode("utf-16-le")


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace as Telegram does, shifting and clipping the entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return the ``bot_command`` entities Telegram detects in a user's plain text."""
    result = []
    for match in _BOT_COMMAND_RE.finditer(text):
        result.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return result


def plain_markdown_v2(source: str) -> str:
    """Return MarkdownV2 text with escapes removed; formatting is not turned into entities."""
    return re.sub(r"\\(.)", r"\1", source)
