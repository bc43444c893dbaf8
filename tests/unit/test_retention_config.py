"""Retention settings: parsed from TGBOT_* variables, checked, and documented as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tgbot.config import _FIELDS, Config, ConfigError, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_retention_setting_with_its_default():
    rows = dict(
        re.findall(r"^\| `TGBOT_(RETENTION_[A-Z_]+)` \| `([^`]+)` \|", README.read_text(), re.M)
    )
    settings = {suffix for suffix in _FIELDS if suffix.startswith("RETENTION_")}
    assert set(rows) == settings
    defaults = Config()
    for suffix, shown in rows.items():
        value = getattr(defaults, _FIELDS[suffix][0])
        assert float(shown) == value, suffix


def test_retention_settings_are_read_from_the_environment():
    config = load_config(
        env={
            "TGBOT_RETENTION_UPDATES_HOURS": "6",
            "TGBOT_RETENTION_SENT_HOURS": "12",
            "TGBOT_RETENTION_TRANSCRIPT_DAYS": "30",
            "TGBOT_RETENTION_QUESTION_DAYS": "7",
            "TGBOT_RETENTION_REFUND_DAYS": "60",
            "TGBOT_RETENTION_AUDIT_DAYS": "400",
            "TGBOT_RETENTION_PROFILE_DAYS": "365",
            "TGBOT_RETENTION_PURGE_INTERVAL": "600",
        }
    )
    assert (
        config.retention_updates_hours,
        config.retention_sent_hours,
        config.retention_transcript_days,
        config.retention_question_days,
        config.retention_refund_days,
        config.retention_audit_days,
        config.retention_profile_days,
        config.retention_purge_interval,
    ) == (6, 12, 30, 7, 60, 400, 365, 600.0)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TGBOT_RETENTION_UPDATES_HOURS": "0"}, "TGBOT_RETENTION_UPDATES_HOURS"),
        ({"TGBOT_RETENTION_AUDIT_DAYS": "a year"}, "TGBOT_RETENTION_AUDIT_DAYS"),
        ({"TGBOT_RETENTION_PURGE_INTERVAL": "-5"}, "TGBOT_RETENTION_PURGE_INTERVAL"),
        # A ticket reopened within the reopen window needs its transcript.
        (
            {"TGBOT_RETENTION_TRANSCRIPT_DAYS": "1", "TGBOT_REOPEN_WINDOW": "90000"},
            "TGBOT_RETENTION_TRANSCRIPT_DAYS",
        ),
    ],
)
def test_a_bad_retention_value_stops_start_up_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        load_config(env=env)
