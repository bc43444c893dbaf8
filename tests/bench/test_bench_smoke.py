"""Every benchmark runs in ``--small`` mode and prints one JSON object with its keys.

Benchmarks report numbers; these tests never judge speed, only that the benchmark code still
works (valid JSON, the expected keys, counts that add up, nothing lost where nothing may be).
The benchmarks run as subprocesses, all at once: about a minute on two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import popen_group

ROOT = Path(__file__).resolve().parents[2]
BENCHES = (
    "cost",
    "capacity",
    "relay_lag",
    "reply_during_broadcast",
    "broadcast",
    "durability",
    "state_scale",
    "profile",
    "router",
    "workers",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """Run every benchmark with --small in parallel; return its JSON (or the failure).

    Each benchmark runs in a process group of its own, killed (with the bot children it
    started) when the fixture ends, whatever happened.
    """
    tmp = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with contextlib.ExitStack() as stack:
        procs = {}
        for name in BENCHES:
            extra = {
                "profile": ["--out", str(tmp / "profile.txt")],
                "cost": ["--http-wallet"],
            }.get(name, [])
            with (tmp / f"{name}.err").open("wb") as err:
                procs[name] = stack.enter_context(
                    popen_group(
                        [sys.executable, "-m", f"bench.{name}", "--small", *extra],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=err,
                    )
                )
        found = {}
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=240)
            lines = [line for line in out.decode().splitlines() if line.strip()]
            err = (tmp / f"{name}.err").read_text()[-2000:]
            assert proc.returncode == 0, f"{name} failed:\n{err}"
            assert len(lines) == 1, f"{name} printed {len(lines)} lines:\n{out.decode()[-2000:]}"
            found[name] = json.loads(lines[0])
    return found


def _common(result: dict, name: str) -> None:
    assert result["bench"] == name
    assert result["small"] is True
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]


def _latency(stats: dict) -> None:
    assert stats["n"] > 0
    assert 0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_cost(results):
    r = results["cost"]
    _common(r, "cost")
    bare = {"command_reply", "text_reply", "button_answer_edit"}
    assert set(r["bare_ptb_cpu_ms_per_update"]) == bare
    light = {"start", "question", "answer_button", "help"}
    walk = {"list", "detail", "refund", "reason", "amount", "confirm"}
    assert set(r["bot_cpu_ms_per_update"]) == light | walk
    assert all(v > 0 for v in r["bot_cpu_ms_per_update"].values())
    # The same-traffic yardstick replays what the bot sent: one reply per command or text,
    # an answer plus an edit or a message per button.
    assert set(r["bare_ptb_same_traffic_cpu_ms_per_update"]) == bare | walk
    calls = r["same_traffic_calls"]
    assert calls["start"] == ["sendMessage"] and calls["answer_button"][0] == "answerCallbackQuery"
    assert set(r["sql_per_update"]) == light | walk
    assert r["sql_per_update"]["list"]["demo_wallet"] > 0
    assert r["sql_per_update"]["start"]["demo_wallet"] == 0
    assert r["light_button_ratio"] > 0
    assert r["params"]["users_per_step"] == 10 and r["params"]["rounds"] == 1
    # Every measured walk did its work: the last step created one refund per walker.
    assert r["refunds_created"] == r["params"]["users_per_step"] * r["params"]["rounds"]
    # The summary figure is the one the per-step figures give.
    bot = r["bot_cpu_ms_per_update"]
    buttons = [bot[s] for s in ("detail", "refund", "reason", "amount", "confirm")]
    assert r["bot_mean_wallet_button_step_ms"] == round(sum(buttons) / len(buttons), 3)
    assert r["peak_rss_mb"] > 0
    # The demo wallet's SQLite thread works on the wallet steps only, and the bot's own
    # figure is the whole one less that thread's.
    wallet_sql = r["demo_wallet_sql_thread_cpu_ms_per_update"]
    assert wallet_sql["confirm"] > 0 and wallet_sql["start"] == 0
    own = r["bot_without_demo_wallet_sql_cpu_ms_per_update"]
    assert own["confirm"] == round(bot["confirm"] - wallet_sql["confirm"], 3)
    # With the wallet on its own loop and thread, its CPU is measured apart (the wallet
    # steps only), the bot's figure is the process's less it, and every walk did its work.
    apart = r["wallet_apart"]
    assert apart["refunds_created"] == r["refunds_created"]
    wallet = apart["wallet_threads_cpu_ms_per_update"]
    assert wallet["confirm"] > 0 and wallet["start"] == 0
    process = apart["process_cpu_ms_per_update"]
    assert apart["bot_cpu_ms_per_update"]["confirm"] == round(
        process["confirm"] - wallet["confirm"], 3
    )
    # Bare PTB doing the same work made the bot's wallet calls, step by step, to a wallet
    # whose threads worked for exactly the steps that call it; its figure is less theirs.
    same_work = r["bare_ptb_same_work"]
    called = {step for step, methods in same_work["wallet_calls"].items() if methods}
    assert "create_refund" in same_work["wallet_calls"]["confirm"]
    assert "reason" not in called and "detail" in called
    worked = same_work["wallet_threads_cpu_ms_per_update"]
    assert {step for step, ms in worked.items() if ms > 0} == called
    assert same_work["cpu_ms_per_update"]["confirm"] == round(
        same_work["process_cpu_ms_per_update"]["confirm"] - worked["confirm"], 3
    )
    assert set(apart["wallet_walk_ratios_same_work"]) == walk
    # Paired: bare PTB's minimal command or button measured just before each of the bot's
    # steps (one round here), and each ratio is the bot's step over the one before it.
    paired = apart["paired_with_minimal"]
    before = paired["minimal_ms_before_step"]
    assert set(before) == (light | walk) - {"question"} and all(
        len(v) == 1 for v in before.values()
    )
    for step, (ms,) in before.items():
        assert ms > 0
        expected = apart["bot_cpu_ms_per_update"][step] / ms
        assert paired["ratio_by_round"][step][0] == pytest.approx(expected, abs=0.011)
    assert (
        paired["wallet_walk_button_ratio_median"] == paired["wallet_walk_button_ratio_by_round"][0]
    )
    # With the wallet over HTTP every step of the walk still did its work.
    http = dict(r["bot_http_wallet_cpu_ms_per_update"])
    assert http.pop("refunds_created") == r["refunds_created"]
    assert set(http) == light | walk and all(v > 0 for v in http.values())
    # The collector's share, per step, for bare PTB and the bot (one round: the mean is the
    # figure); it ran as tgbot run runs (uvloop, the tuned collector).
    assert r["params"]["gc"].startswith("tuned") and r["params"]["gc_threshold"][0] == 10_000
    assert r["event_loop"] == "uvloop"
    collector = r["collector"]
    assert set(collector["bare_ptb"]) == bare and set(collector["bot"]) == light | walk
    for step, shares in collector["bot"].items():
        assert shares["mean_cpu_ms"] == bot[step]
        assert 0 <= shares["gc_ms_best_round"] == shares["gc_ms_mean"] <= bot[step]


def test_capacity(results):
    r = results["capacity"]
    _common(r, "capacity")
    assert r["params"]["gc"] == "tuned"  # tgbot run's collector settings, every subject
    assert set(r["results"]) == {"light", "wallet"}
    for flow, subjects in r["results"].items():
        assert set(subjects) == {"bot", "ptb_concurrent", "ptb_sequential"}
        for subject, summary in subjects.items():
            trial = summary["trials"][0]
            walks = trial["walks"]
            assert walks["started"] == walks["done"] + walks["stuck"] + walks["timeout"]
            assert walks["done"] > 0, (flow, subject, trial)
            _latency(trial["latency_ms"])
            assert trial["cpu_ms_per_update"] > 0 and trial["rss_mb"] > 0
            assert "max_rate_p99_under_1s" in summary
    assert r["params"]["wallet_calls_per_step"]["refund"] >= 1
    assert "light_bot_to_ptb_concurrent" in r["ratios"]


def test_relay_lag(results):
    r = results["relay_lag"]
    _common(r, "relay_lag")
    assert {(run["groups"], run["coalescing"]) for run in r["runs"]} >= {(1, True), (1, False)}
    for run in r["runs"]:
        assert run["lines_written"] > 0
        assert run["lines_arrived"] + run["lines_missing"] == run["lines_written"]
        assert run["lines_missing"] == 0
        _latency(run["lag_ms_measured"])


def test_reply_during_broadcast(results):
    r = results["reply_during_broadcast"]
    _common(r, "reply_during_broadcast")
    _latency(r["idle_reply_ms"])
    _latency(r["during_broadcast_reply_ms"])
    assert r["broadcast_sent_during_phase"] > 0


def test_broadcast(results):
    r = results["broadcast"]
    _common(r, "broadcast")
    # "done", or "running" when a recipient is stranded by the kill (see docs/performance.md).
    assert r["status"] in ("done", "running"), r
    assert r["segments"][-1]["ended_by"] != "running", r  # not cut off by the run's deadline
    assert r["misses"] == 0, r
    assert r["restarts"] == 1  # killed with -9 once, restarted
    counts = r["db_counts"]
    assert sum(counts.values()) == r["params"]["recipients"], r
    assert counts.get("blocked", 0) == r["params"]["blocked"], r
    assert r["delivered_users"] == counts.get("sent", 0) + counts.get("queued", 0), r
    assert r["status"] == "done" or r["stranded_queued"] == counts.get("queued", 0), r
    assert 0 <= r["duplicates"] <= 50  # at most what was in flight at the kill
    assert r["achieved_rate_per_s"] > 0 and r["bot_rss_mb"]["max"] > 0


def test_durability(results):
    r = results["durability"]
    _common(r, "durability")
    inbox = r["inbox"]
    # Nothing lost; a kill between a reply and its inbox mark repeats that reply (at least
    # once), so duplicates are bounded by what was in progress, never required to be 0.
    assert inbox["lost"] == 0
    assert inbox["duplicates"] <= 64 * len(inbox["kills"])
    assert inbox["updates_answered"] == inbox["updates_sent"] > 0
    assert inbox["inbox_pending_at_end"] == 0
    notices = r["refund_notifications"]
    assert notices["walks_done"] == notices["refunds"] == notices["users"]
    # The final status always reaches the user, once; an intermediate status the wallet
    # passed while the bot was down (or between two polls) may be skipped (reported).
    assert notices["final_notices_missed"] == 0
    # Only a notice in flight at the kill may come twice (sent, then the kill before "sent"
    # was recorded); at most one per user here.
    assert notices["notices_duplicated"] == notices["notices_duplicated_across_kill"]
    assert notices["notices_duplicated"] <= notices["users"]
    assert notices["notices_received"] + notices["notices_missed"] == notices["notices_expected"]
    assert notices["notices_received"] > 0


def test_state_scale(results):
    r = results["state_scale"]
    _common(r, "state_scale")
    assert [run["users"] for run in r["runs"]] == [0, 2000]
    for run in r["runs"]:
        assert run["first_update_answered_s"] > 0 and run["rss_mb"] > 0
        # The burst after start: 50 new users, /start and /help each, all answered.
        assert run["burst_updates"] == 100 and run["burst_cpu_ms_per_update"] > 0
        collected = run["burst_gc"]
        assert len(collected["collections_per_generation"]) == 3
        assert 0 <= collected["longest_ms"] <= collected["ms"]
    assert r["runs"][1]["persisted_conversations"] >= 2000
    assert r["gc"] == "tuned"


def test_profile(results):
    r = results["profile"]
    _common(r, "profile")
    walks = r["trial"]["walks"]
    assert walks["done"] > 0
    assert walks["started"] == walks["done"] + walks["stuck"] + walks["timeout"]
    assert r["trial"]["updates"] == r["trial"]["latency_ms"]["n"] > 0
    assert r["bot_cpu_ms_per_update"] > 0
    # pyinstrument (the dev extra has it) wrote the text and HTML reports.
    assert r["profiler"] == "pyinstrument"
    assert Path(r["report"]).stat().st_size > 0 and Path(r["html"]).stat().st_size > 0
    # Lines are "<seconds> <function>  <file>", heaviest first ...
    for lines in (r["top_self_s"], r["top_total_s"]):
        seconds = [float(line.split()[0]) for line in lines]
        assert seconds and seconds == sorted(seconds, reverse=True)
    # ... and they profile the bot's process handling updates, not the load generator.
    assert any("WalletApplication.process_update" in line for line in r["top_total_s"])
    assert (r["event_loop"], r["gc"]) == ("uvloop", "tuned")  # as tgbot run runs the bot
    assert any("tgbot/runtime.py" in line for line in r["top_total_s"])


def test_router(results):
    r = results["router"]
    _common(r, "router")
    assert r["model"] == "ensemble" and r["examples"] >= 25 * 2 * 40
    assert r["decisions"] == r["questions"] > 0
    assert 0 < r["ms_p50"] <= r["ms_p95"] <= r["ms_max"]
    assert r["startup_s"] >= r["models_s"] > 0 and r["trained_at_start"] is False


def test_workers(results):
    r = results["workers"]
    _common(r, "workers")
    if "skipped" in r:  # no PostgreSQL server binaries here (as the PostgreSQL tests skip)
        pytest.skip(r["skipped"])
    assert set(r["results"]) == {"1", "2"}
    for count, summary in r["results"].items():
        assert summary["stopped_with"] == 0, count  # Ctrl-C stopped every worker cleanly
        trial = summary["trials"][0]
        walks = trial["walks"]
        assert walks["started"] == walks["done"] + walks["stuck"] + walks["timeout"]
        assert walks["done"] > 0, (count, trial)
        assert trial["updates"] == trial["latency_ms"]["n"] > 0
        _latency(trial["latency_ms"])
        assert trial["drained_after"] is True  # every update delivered and handled
        # The workers and the PostgreSQL server both did the work (CPU read from /proc).
        assert trial["workers_cpu_ms_per_update"] > 0 and trial["postgres_cpu_ms_per_update"] > 0
        assert trial["workers_rss_mb"] > 0
        assert summary["saturation"]["at_rate"] == trial["rate_users_per_s"]
        assert "max_rate_p99_under_1s" in summary
    assert r["params"]["postgres_durable"] is True
    assert len(r["load_avg_before"]) == len(r["load_avg_after"]) == 3
