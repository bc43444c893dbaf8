"""Find card numbers stored in clear, whatever the user typed between their digits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: JSON's ``\\uXXXX`` escapes (``json.dumps`` writes non-ASCII text this way).
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: What may stand between two digits of a number: up to three characters that are neither
#: letters nor digits (spaces, dashes, dots, slashes, no-break or zero-width spaces...).
_GAP = r"[^0-9A-Za-z]{0,3}"


def readable(blob: bytes) -> str:
    """Return ``blob`` as text a person would read: UTF-8, JSON escapes undone, NFKC (so
    full-width digits are digits)."""
    text = blob.decode("utf-8", errors="replace")
    text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return unicodedata.normalize("NFKC", text)


def card_numbers_in(blob: bytes, numbers: Iterable[str]) -> list[str]:
    """Return the ``numbers`` that occur in ``blob`` in any typed form: plain, grouped by
    spaces or dashes, dotted, with invisible characters, full-width or JSON-escaped."""
    text = readable(blob)
    return [number for number in numbers if re.search(_GAP.join(number), text)]
