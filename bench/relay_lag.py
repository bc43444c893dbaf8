"""Relay lag: N open tickets whose users keep writing into the agents' group(s) under
Telegram's 20-messages-a-minute group cap; lag user -> topic, with and without coalescing,
with one and with two groups.

The bot runs in-process on the emulator with Telegram's caps on. Time can be compressed by
``--speed K``: the group cap becomes 20*K a minute (in the bot's lanes and in the emulator)
and users write K times as often, so a queue builds exactly as at K=1 but K times faster;
lags are reported both as measured and multiplied back by K ("at_20_per_min"). The fixed
costs (a few ms of processing) are not scaled, so K>1 slightly flatters the result.

Coalescing (consecutive texts of one ticket waiting for the budget become one message) has no
switch in the bot: "without" replaces ``SupportDesk._last_text`` with a map that forgets,
which is the one place coalescing happens.

    python -m bench.relay_lag                # 10 tickets, a line each ~5 s, 120 s, K=1
    python -m bench.relay_lag --speed 6      # the same in a sixth of the time
    python -m bench.relay_lag --small        # seconds, for CI
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench._common import (
    InProcessBot,
    Watcher,
    emit,
    machine,
    make_emulator,
    parser,
    peak_rss_mb,
    percentiles,
    quiet_logs,
    workdir,
)
from tgbot.sandbox.models import Caps

RIGHTS = {"can_manage_topics": True, "can_delete_messages": True}


class _Forgetful(dict):
    """A ``_last_text`` that never remembers: every relayed text is its own message."""

    def get(self, key: Any, default: Any = None) -> Any:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


async def scenario(
    *,
    tickets: int,
    groups: int,
    coalesce: bool,
    interval: float,
    duration: float,
    speed: float,
    seed: int,
    drain: float,
) -> dict[str, Any]:
    rng = random.Random(seed)
    per_minute = 20.0 * speed
    with workdir() as tmp:
        emu = make_emulator()
        emu.caps = Caps(per_group_per_minute=int(per_minute))
        agent = emu.add_user("Agent", language_code="en")
        admin = emu.add_user("Admin", language_code="en", started=True)
        chats = [
            emu.add_forum_group(
                f"Agents {g}",
                members=[agent.id],
                admins=[agent.id],
                bot_is_admin=True,
                bot_rights=RIGHTS,
            )
            for g in range(groups)
        ]
        group_ids = {c.id for c in chats}
        bot = await InProcessBot(
            tmp / "bot.db",
            emu,
            agent_chats=tuple((c.id, None) for c in chats),
            admin_ids=frozenset({admin.id}),
            rate_group_per_minute=per_minute,
            unclaimed_reminder=86400.0,
        ).start()
        app = bot.app
        await app.repos.agents.add(agent.id, "Agent", admin.id)
        if not coalesce:
            app.desk._last_text = _Forgetful()
        watcher = Watcher(emu)
        sent_at: dict[str, float] = {}
        arrived: dict[str, float] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") != "message" or event.get("chat_id") not in group_ids:
                return
            message = event["message"]
            if message.get("from", {}).get("id") != emu.bot.id:
                return
            now = watcher.clock()
            for line in (message.get("text") or "").splitlines():
                if line in sent_at and line not in arrived:
                    arrived[line] = now

        unsubscribe = emu.subscribe(on_event)
        try:
            users = [emu.add_user(f"User{i}", language_code="en") for i in range(tickets)]
            setup_started = time.monotonic()
            for user in users:
                emu.user_send(user.id, "/human")
            # Every ticket has its topic (topic creation and header cards share the cap).
            deadline = time.monotonic() + drain
            while True:
                open_tickets = [await app.repos.tickets.open_for_user(u.id) for u in users]
                if all(t is not None and t.thread_id for t in open_tickets):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("tickets did not get their topics")
                await asyncio.sleep(0.05)
            await bot.settle(timeout=drain)
            setup_s = time.monotonic() - setup_started

            async def write(index: int, user_id: int) -> None:
                await asyncio.sleep(rng.uniform(0, interval / speed))
                k = 0
                end = time.monotonic() + duration / speed
                while time.monotonic() < end:
                    line = f"u{index}-m{k}"
                    sent_at[line] = watcher.clock()
                    emu.user_send(user_id, line)
                    k += 1
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * interval / speed)

            started = time.monotonic()
            await asyncio.gather(*(write(i, u.id) for i, u in enumerate(users)))
            deadline = time.monotonic() + drain
            while len(arrived) < len(sent_at):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            group_messages = sum(
                1
                for c in chats
                for m in emu.bot_messages(c.id)
                if any(line in sent_at for line in (m.get("text") or "").splitlines())
            )
        finally:
            unsubscribe()
            await bot.stop()
            await emu.aclose()
    lags = [arrived[line] - sent_at[line] for line in arrived]
    measured = percentiles(lags)
    scaled = percentiles([lag * speed for lag in lags])
    return {
        "tickets": tickets,
        "groups": groups,
        "coalescing": coalesce,
        "lines_written": len(sent_at),
        "lines_arrived": len(arrived),
        "lines_missing": len(sent_at) - len(arrived),
        "group_messages": group_messages,
        "lines_per_message": round(len(arrived) / group_messages, 2) if group_messages else None,
        "lag_ms_measured": measured,
        "lag_s_at_20_per_min": {
            k: (round(v / 1000, 2) if isinstance(v, float) else v) for k, v in scaled.items()
        },
        "setup_s": round(setup_s, 2),
        "run_s": round(elapsed, 2),
    }


async def main_async(args: Any) -> dict[str, Any]:
    if args.small:
        # drain only bounds the wait (a loaded CI machine is slow); runs end when all arrived.
        tickets, interval, duration, speed, drain = 4, 3.0, 12.0, 6.0, 90.0
        plans = [(1, True), (1, False)]
    else:
        tickets, interval, duration, speed = args.tickets, args.interval, args.duration, args.speed
        drain = max(60.0, 3 * duration / speed)
        plans = [(1, True), (1, False), (2, True), (2, False)]
    started = time.monotonic()
    runs = []
    for groups, coalesce in plans:
        runs.append(
            await scenario(
                tickets=tickets,
                groups=groups,
                coalesce=coalesce,
                interval=interval,
                duration=duration,
                speed=speed,
                seed=args.seed,
                drain=drain,
            )
        )
    return {
        "bench": "relay_lag",
        "small": args.small,
        "machine": machine(),
        "params": {
            "tickets": tickets,
            "line_every_s": interval,
            "writing_s": duration,
            "speed": speed,
            "group_cap_per_min": 20,
        },
        "runs": runs,
        "duration_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=10)
    p.add_argument("--interval", type=float, default=5.0, help="seconds between a user's lines")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of writing (at K=1)")
    p.add_argument("--speed", type=float, default=1.0, help="time compression K")
    args = p.parse_args()
    quiet_logs()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
