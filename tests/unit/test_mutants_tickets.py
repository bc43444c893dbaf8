"""Where the desk routes: agents' groups followed across id migrations (chains of them), which
groups are agents' groups, round robin over the healthy ones.

Written to kill the mutants of those methods of ``services/desk/groups.py`` (``scripts/
mutate.sh tickets``, docs/testing.md); the rest of that file talks to Telegram and is judged
by the e2e tests.
"""

from __future__ import annotations

from types import SimpleNamespace

from services.desk.groups import GroupHealth


def _desk(groups: list[int], moves: dict[int, int] | None = None) -> GroupHealth:
    desk = GroupHealth()
    desk._config = SimpleNamespace(agent_chat_ids=groups)  # type: ignore[assignment]
    desk._moves = dict(moves or {})  # type: ignore[attr-defined]
    desk._health = {}  # type: ignore[attr-defined]
    desk._rr = 0  # type: ignore[attr-defined]
    return desk


def test_a_group_is_followed_through_every_move():
    desk = _desk([-1], {-1: -2, -2: -3, -7: -8})
    assert desk.current_id(-1) == -3
    assert desk.current_id(-2) == -3
    assert desk.current_id(-3) == -3
    assert desk.current_id(-7) == -8
    assert desk.current_id(-9) == -9


def test_agents_groups_are_known_by_their_current_id_only():
    desk = _desk([-1, -5], {-1: -2, -2: -3})
    assert desk.is_agent_group(-3) and desk.is_agent_group(-5)
    assert not desk.is_agent_group(-1)  # the old id: messages come from the new one
    assert not desk.is_agent_group(-2)
    assert not desk.is_agent_group(-4)
    assert not _desk([]).is_agent_group(-1)


def test_a_group_is_healthy_until_a_check_finds_a_problem():
    desk = _desk([-1, -2])
    desk._health.update({-1: None, -2: "not a forum"})  # type: ignore[attr-defined]
    assert desk.is_healthy(-1) and not desk.is_healthy(-2)
    assert desk.is_healthy(-3)  # never checked


def test_round_robin_takes_each_group_in_turn():
    desk = _desk([-1, -2, -3])
    assert [desk.next_of([-1, -2, -3]) for _ in range(6)] == [-2, -3, -1, -2, -3, -1]
    assert [desk.next_of([-9]) for _ in range(2)] == [-9, -9]
    assert [desk.next_of([-1, -2]) for _ in range(3)] == [-2, -1, -2]  # the turn goes on
