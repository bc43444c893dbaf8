"""Configuration: environment, TOML file, and one clear line per bad value."""

import subprocess
import sys
from pathlib import Path

import pytest

from tgbot.config import Config, ConfigError, load_config


def test_defaults_without_environment():
    config = load_config(env={})
    assert config.token is None
    assert config.api_base_url == "https://api.telegram.org/bot"
    assert config.default_language == "en"
    assert config.timezone == "Asia/Shanghai"
    assert config.db_path == Path("tgbot.db")
    assert config.backend_max_in_flight == 16


def test_environment_values_are_parsed():
    config = load_config(
        env={
            "TGBOT_TOKEN": "123:abc",
            "TGBOT_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "TGBOT_DB_PATH": "/tmp/x.db",
            "TGBOT_DEMO_WALLET_DB_PATH": "/tmp/w.sqlite",
            "TGBOT_ADMIN_IDS": "1, 2;3",
            "TGBOT_AGENT_CHAT_ID": "-1001, -1002:zh-Hans",
            "TGBOT_BUSINESS_HOURS": "09:00-21:30",
            "TGBOT_LINK_ALLOWLIST": "upay.com, help.upay.com",
            "TGBOT_DEFAULT_LANGUAGE": "zh-Hans",
            "TGBOT_TIMEZONE": "Europe/Berlin",
            "TGBOT_BACKEND_MAX_IN_FLIGHT": "40",
        }
    )
    assert config.token == "123:abc"
    assert config.backend_max_in_flight == 40
    assert config.demo_wallet_file == Path("/tmp/w.sqlite")
    assert config.api_file_url == "http://127.0.0.1:8081/file/bot"
    assert config.admin_ids == frozenset({1, 2, 3})
    assert config.agent_chat_ids == (-1001, -1002)
    assert config.agent_chats == ((-1001, None), (-1002, "zh_Hans"))
    assert config.business_hours == (540, 1290)
    assert config.link_allowlist == ("upay.com", "help.upay.com")
    assert config.default_language == "zh_Hans"
    assert config.zone.key == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TGBOT_ADMIN_IDS", "1,abc"),
        ("TGBOT_TIMEZONE", "Mars/Base"),
        ("TGBOT_DEFAULT_LANGUAGE", "fr"),
        ("TGBOT_API_BASE_URL", "not a url"),
        ("TGBOT_TOKEN", "nocolon"),
        ("TGBOT_FLOW_TIMEOUT", "0"),
        ("TGBOT_PERSISTENCE_INTERVAL", "-1"),
        ("TGBOT_DEBUG_USER_TEXT", "maybe"),
        ("TGBOT_AGENT_CHAT_ID", "-1001:fr"),
        ("TGBOT_BUSINESS_HOURS", "9-5"),
        ("TGBOT_LINK_ALLOWLIST", "http://x.com/a"),
        ("TGBOT_BACKEND_MAX_IN_FLIGHT", "0"),
    ],
)
def test_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigError) as err:
        load_config(env={name: value})
    assert str(err.value).startswith(name + ":")
    assert "\n" not in str(err.value)


def test_toml_file_then_environment_wins(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text('timezone = "UTC"\nadmin_ids = [7, 8]\ndb_path = "a.db"\n')
    config = load_config(env={"TGBOT_DB_PATH": "b.db"}, config_file=toml)
    assert config.timezone == "UTC"
    assert config.admin_ids == frozenset({7, 8})
    assert config.db_path == Path("b.db")


def test_toml_unknown_key_is_refused(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text('colour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_config(env={}, config_file=toml)


def test_cli_bad_value_prints_one_line_and_exits_2(tmp_path):
    env = {"TGBOT_TIMEZONE": "Nowhere/Land", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "tgbot", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "config error: TGBOT_TIMEZONE: unknown time zone 'Nowhere/Land'"
    ]


def test_the_old_overall_rate_name_sets_the_bulk_budget_and_the_new_name_wins():
    assert load_config(env={}).rate_bulk_per_second == 30.0
    old = load_config(env={"TGBOT_RATE_OVERALL_PER_SECOND": "12"})
    assert old.rate_bulk_per_second == 12.0
    both = load_config(
        env={"TGBOT_RATE_OVERALL_PER_SECOND": "12", "TGBOT_RATE_BULK_PER_SECOND": "25"}
    )
    assert both.rate_bulk_per_second == 25.0
    with pytest.raises(ConfigError) as err:
        load_config(env={"TGBOT_RATE_OVERALL_PER_SECOND": "0"})
    assert str(err.value).startswith("TGBOT_RATE_OVERALL_PER_SECOND:")


def test_rate_settings_from_a_file(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text(
        "rate_overall_per_second = 15\nrate_chat_burst = 5\nrate_paid_per_second = 500\n"
    )
    config = load_config(env={}, config_file=toml)
    assert (config.rate_bulk_per_second, config.rate_chat_burst) == (15.0, 5.0)
    assert config.rate_paid_per_second == 500.0


def test_database_url_selects_postgres_and_anything_else_is_refused():
    assert load_config(env={}).database_url is None  # SQLite, the embedded default
    url = "postgresql://bot:pw@db.internal:5432/support"
    assert load_config(env={"TGBOT_DATABASE_URL": f" {url} "}).database_url == url
    assert load_config(env={"TGBOT_DATABASE_URL": ""}).database_url is None
    with pytest.raises(ConfigError, match="TGBOT_DATABASE_URL: expected a postgresql:// URL"):
        load_config(env={"TGBOT_DATABASE_URL": "mysql://bot@db/support"})


def test_the_demo_never_uses_the_configured_postgres(tmp_path):
    from types import SimpleNamespace

    from tgbot.sandbox.demo import demo_config

    real = Config(database_url="postgresql://bot:pw@db.internal/support")
    server = SimpleNamespace(
        base_url="http://x/bot", base_file_url="http://x/file/bot", root_url="http://x/"
    )
    world = SimpleNamespace(admin=SimpleNamespace(user_id=1), agents_group=SimpleNamespace(id=-100))
    config = demo_config(real, server, world, tmp_path / "demo.db")  # type: ignore[arg-type]
    assert config.database_url is None and config.db_path == tmp_path / "demo.db"
