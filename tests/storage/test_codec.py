"""Tagged JSON used for persisted user/chat/bot data."""

import subprocess
import sys

import pytest

from storage import codec


def test_plain_json_is_stored_as_plain_json() -> None:
    value = {"name": "安", "n": 1, "x": 1.5, "ok": True, "none": None, "list": [1, "a"]}
    text = codec.dumps(value)
    assert text == '{"name":"安","n":1,"x":1.5,"ok":true,"none":null,"list":[1,"a"]}'
    assert codec.loads(text) == value


def test_unknown_tag_is_reported() -> None:
    with pytest.raises(ValueError, match="Unknown tag"):
        codec.loads('{"__t": "pickle", "v": "..."}')


def test_unsupported_type_names_the_type() -> None:
    class Secret:
        pass

    with pytest.raises(TypeError, match="Secret"):
        codec.dumps({"x": [Secret()]})


def test_storage_imports_nothing_from_the_application() -> None:
    code = (
        "import sys, storage\n"
        "others = ('tgbot', 'handlers', 'services')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in others)\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
