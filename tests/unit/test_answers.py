"""Self-service answers, pure logic: the articles, the learned router (training data, the
decision, safety, the frozen evaluation splits), and the repository that counts answered /
helpful / escalated questions."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import Database, migrate
from storage.repos.answers import ANSWERED, CANDIDATES, UNMATCHED, AnswerRepository
from tgbot.answers import ARTICLES, HOURS_ALWAYS, HOURS_RANGE, TOPICS, get_article
from tgbot.answers.measure import by_writer, choose_thresholds, report
from tgbot.answers.router import (
    KINDS,
    STOLEN,
    CharModel,
    Embedder,
    Example,
    Router,
    Thresholds,
    combine,
    decide,
    decide_many,
    default_router,
    load_embeddings,
    load_examples,
    load_model,
    normalize,
)
from tgbot.i18n import translator
from tgbot.text import check_callback_data

DATA = Path(__file__).parent / "data"
#: The frozen splits: changing them (instead of adding training data) is refused.
ROUTER_EVAL_SHA256 = "9f7447ccacea8b39fd833a9726a28341c1b0d5a8f53de91b7b1929cae2791688"
OLD_EVAL_SHA256 = "6d2974f29a203a4b413b9a0bbb84a3f8b2539f896f775cf938bbf559c252a51f"
ZH = translator("zh_Hans")
TAG = re.compile(r"</?[a-z]+>")


@pytest.fixture(scope="module")
def router():
    return default_router()


def _frozen(name: str, sha256: str) -> list[Example]:
    raw = (DATA / name).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == sha256, f"the frozen {name} was changed"
    assert raw.startswith(b"# FROZEN")
    return load_examples(DATA / name)


# --- articles --------------------------------------------------------------------------------


def test_every_topic_but_out_of_scope_has_an_article_with_valid_buttons():
    assert {a.key for a in ARTICLES} == set(TOPICS) - {"none"}
    assert len([a for a in ARTICLES if a.kind == "article"]) >= 18
    for article in ARTICLES:
        assert get_article(article.key) is article
        for action in article.actions:
            check_callback_data(action.data)
        # The longest callback data an answer button can carry fits Telegram's 64 bytes.
        check_callback_data(f"ans:pick:{10**12 - 1}:{article.key}")
        assert len(article.body) < 1500


def test_every_article_is_translated_with_the_same_tags_and_placeholders():
    for article in ARTICLES:
        for msgid in (article.title, article.body):
            zh = ZH.gettext(msgid)
            assert zh != msgid and re.search(r"[\u4e00-\u9fff]", zh), msgid[:40]
            assert TAG.findall(zh) == TAG.findall(msgid), article.key
            assert re.findall(r"{\w+}", zh) == re.findall(r"{\w+}", msgid), article.key
    assert "{hours}" in get_article("contact").body
    assert ZH.gettext(HOURS_ALWAYS) != HOURS_ALWAYS and "{zone}" in ZH.gettext(HOURS_RANGE)


def test_freeze_is_offered_by_theft_articles_never_by_unfreeze_or_app_trouble():
    for key in ("account_stolen", "unknown_charge", "phishing"):
        assert "menu:freeze" in [a.data for a in get_article(key).actions], key
    for key in ("unfreeze", "app_trouble", "wrong_transfer"):
        assert all(a.data != "menu:freeze" for a in get_article(key).actions), key


# --- data ------------------------------------------------------------------------------------


def test_training_data_has_every_topic_in_both_languages():
    examples = load_examples()
    for topic in TOPICS:
        for lang in ("zh", "en"):
            count = sum(e.topic == topic and e.lang == lang for e in examples)
            assert count >= 40, (topic, lang, count)


def test_frozen_split_has_every_topic_in_both_languages_and_nothing_from_training():
    frozen = _frozen("router_eval.tsv", ROUTER_EVAL_SHA256)
    for topic in TOPICS:
        for lang in ("zh", "en"):
            assert sum(e.topic == topic and e.lang == lang for e in frozen) >= 20, (topic, lang)
    training = {normalize(e.text) for e in load_examples()}
    overlap = [e.text for e in frozen if normalize(e.text) in training]
    assert len(overlap) <= len(frozen) // 100, overlap  # a few "hi"s may coincide


def test_stored_embeddings_cover_every_training_text():
    vectors, missing = load_embeddings(load_examples(), None)  # raises if any is missing
    assert missing == 0 and vectors.shape[1] == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=0.01)


def test_normalize_folds_width_case_traditional_and_numbers():
    assert normalize("ＡＢＣ  帳戶被凍結 460.61") == "abc 帐户被冻结 0.0"  # OpenCC t2s
    assert normalize(unicodedata.normalize("NFD", "Café")) == "café"


def test_the_stored_model_is_trained_on_the_current_data_and_reproducible(router):
    """``data/model.npz`` (from ``tgbot answers build``) matches ``train.tsv``: the default
    router loads it, and training again on the same data gives the same probabilities."""
    assert load_model() is not None, "run `tgbot answers build` after changing train.tsv"
    assert not router.trained_at_start
    texts = ["支付失败怎么办", "hi", "someone is using my account", "京东 88块 想退款"]
    fresh = Router(load_examples())
    # Equal up to the order BLAS sums in (its thread count changes the last digits).
    assert np.allclose(router.probabilities(texts), fresh.probabilities(texts), atol=1e-3)


def test_the_embedding_is_skipped_where_the_char_model_is_sure(router):
    """The router's probabilities are the char model's where it is at least ``gate`` sure
    (no embedding computed), else the ensemble's."""
    assert router.embedding is not None
    texts = ["hi", "你好", "the thing with my money", "我的钱"]
    char = router.char.proba(texts)
    sure = char.max(axis=1) >= router.gate
    assert sure.any() and not sure.all(), char.max(axis=1)
    before = router.embedded
    probs = router.probabilities(texts)
    assert router.embedded - before == int((~sure).sum())
    assert np.array_equal(probs[sure], char[sure])
    unsure = [text for text, known in zip(texts, sure, strict=True) if not known]
    assert np.allclose(probs[~sure], combine(char[~sure], router.embedding.proba(unsure)))


def test_recent_embeddings_are_kept_and_old_ones_dropped(monkeypatch):
    embedder = Embedder()
    calls = []
    query = embedder._model.query
    monkeypatch.setattr(embedder._model, "query", lambda texts: calls.append(texts) or query(texts))
    monkeypatch.setattr(embedder, "CACHE", 2)
    first = embedder.embed(["Hello", "hi"])
    assert np.array_equal(embedder.embed(["hello"]), first[:1])  # normalised: the same text
    assert calls == [["hello", "hi"]]
    embedder.embed(["freeze it"])  # "hi" is the least recently used: dropped
    embedder.embed(["hi", "hello"])
    assert calls[1:] == [["freeze it"], ["hi"]]


def test_by_writer_tests_each_training_file_on_a_model_of_the_others():
    examples = load_examples()
    splits = by_writer(examples)
    assert len(splits) == len({e.source for e in examples}) >= 2
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(len(examples)))
    for train, test in splits:
        assert {examples[i].source for i in test}.isdisjoint(examples[i].source for i in train)


def test_char_model_is_deterministic():
    examples = load_examples()[::3]
    texts = ["支付失败", "where is my refund", "hi"]
    assert np.array_equal(CharModel(examples).proba(texts), CharModel(examples).proba(texts))


# --- the decision ----------------------------------------------------------------------------


def _row(**probs: float) -> np.ndarray:
    row = np.array([probs.get(t, 0.0) for t in TOPICS])
    rest = 1 - row.sum()
    others = [i for i, t in enumerate(TOPICS) if t not in probs]
    row[others] = rest / len(others)
    return row


T = Thresholds(clear=0.5, none=0.4, safety=0.2, candidate=0.08)


def test_a_clear_topic_is_acted_on():
    decision = decide(_row(payment_failed=0.8), T)
    assert (decision.kind, decision.topics) == ("answer", ("payment_failed",))


def test_possible_theft_puts_the_freeze_first_and_asks_when_unsure():
    clear = decide(_row(account_stolen=0.7, unfreeze=0.2), T)
    assert (clear.kind, clear.topics) == ("answer", (STOLEN,))
    # Unsure between freeze and unfreeze, even with unfreeze ahead: ask, freeze first.
    unsure = decide(_row(unfreeze=0.45, account_stolen=0.35), T)
    assert (unsure.kind, unsure.topics) == ("safety", (STOLEN, "unfreeze"))
    # Theft below the safety threshold does not interfere.
    assert decide(_row(unfreeze=0.8, account_stolen=0.1), T).topics == ("unfreeze",)


def test_out_of_scope_and_unclear():
    assert decide(_row(none=0.6), T).kind == "none"
    unclear = decide(_row(refund_rules=0.3, refund_status=0.25, refund_request=0.2), T)
    assert unclear.kind == "candidates"
    assert unclear.topics == ("refund_rules", "refund_status", "refund_request")
    # "none" ahead but unsure: the in-scope topics close to it are offered.
    maybe = decide(_row(none=0.3, fees=0.25, limits=0.2), T)
    assert maybe.kind == "candidates" and maybe.topics[:2] == ("fees", "limits")
    # Greetings and out of scope are never candidates.
    assert "greeting" not in decide(_row(greeting=0.3, contact=0.3), T).topics


def test_a_greeting_needs_less_than_a_clear_topic():
    thresholds = Thresholds(clear=0.5, greeting=0.3)
    hello = decide(_row(greeting=0.35, human=0.3), thresholds)
    assert (hello.kind, hello.topics) == ("answer", ("greeting",))
    assert decide(_row(greeting=0.25, human=0.2, contact=0.2), thresholds).kind == "candidates"


def test_possible_theft_below_the_safety_threshold_adds_the_freeze_button():
    thresholds = Thresholds(clear=0.5, safety=0.2, freeze_button=0.05)
    near = decide(_row(phishing=0.8, account_stolen=0.1), thresholds)
    assert (near.kind, near.topics, near.freeze_button) == ("answer", ("phishing",), True)
    far = decide(_row(phishing=0.8, account_stolen=0.01), thresholds)
    assert far.kind == "answer" and not far.freeze_button
    listed = decide(_row(phishing=0.3, contact=0.3, account_stolen=0.1), thresholds)
    assert listed.kind == "candidates" and listed.freeze_button
    # Theft at the safety threshold asks first instead; greetings never get it.
    assert decide(_row(phishing=0.6, account_stolen=0.3), thresholds).kind == "safety"
    assert not decide(_row(greeting=0.8, account_stolen=0.1), thresholds).freeze_button


_PROBABILITY_ROWS = st.lists(
    st.floats(0, 1, allow_nan=False), min_size=len(TOPICS), max_size=len(TOPICS)
).filter(lambda values: sum(values) > 0)
_THRESHOLDS = st.builds(
    Thresholds,
    clear=st.sampled_from([0.3, 0.45, 0.5, 0.7]),
    none=st.sampled_from([0.2, 0.4, 0.6]),
    safety=st.sampled_from([0.05, 0.1, 0.2, 0.5]),
    candidate=st.sampled_from([0.0, 0.08, 0.2]),
    greeting=st.sampled_from([0.15, 0.4, 0.8]),
    freeze_button=st.sampled_from([0.02, 0.075, 0.3]),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(_PROBABILITY_ROWS, min_size=1, max_size=8),
    thresholds=_THRESHOLDS,
    theft_words=st.lists(st.booleans(), min_size=8, max_size=8),
    ties=st.booleans(),
)
def test_vectorised_decision_agrees_with_the_decision(rows, thresholds, theft_words, ties):
    """``decide_many`` (which chooses the thresholds) decides as ``decide`` (which serves)."""
    probs = np.array(rows, dtype=np.float64)
    if ties:  # equal probabilities, where the order of topics decides
        probs = np.round(probs * 4) / 4 + 1e-9
    probs /= probs.sum(axis=1, keepdims=True)
    words = np.array(theft_words[: len(rows)])
    kind, first, button = decide_many(probs, thresholds, words)
    for i, row in enumerate(probs):
        decision = decide(row, thresholds, "it was not me" if words[i] else "")
        assert KINDS[kind[i]] == decision.kind
        assert (TOPICS[first[i]] if first[i] >= 0 else "none") == decision.best
        assert bool(button[i]) == decision.freeze_button


def test_choosing_thresholds_offers_the_freeze_to_theft_the_model_finds_unlikely():
    """Theft examples at a theft probability of 0.09 make the safety threshold go below it,
    although 50 other examples are then asked needlessly (a missed theft weighs more)."""
    rows, examples = [], []
    for i in range(300):
        topic = STOLEN if i < 20 else "fees" if i < 200 else "limits"
        stolen = 0.09 if topic == STOLEN else 0.08 if i < 70 else 0.0
        rows.append(_row(**{topic if topic != STOLEN else "phishing": 0.7, STOLEN: stolen}))
        examples.append(Example("en", topic, f"message {i}"))
    chosen = choose_thresholds(examples, np.array(rows))
    assert chosen.safety <= 0.09 < 0.1
    _, first, _ = decide_many(np.array(rows), chosen)
    assert all(TOPICS[f] == STOLEN for f in first[:20])


# --- routing ---------------------------------------------------------------------------------

#: The cases the issue quotes (not from either split): where each must go first.
ISSUE_CASES = [
    ("someone drained the money from my account", STOLEN),
    ("freeze my account now, someone is using it", STOLEN),
    ("balance dropped by 2000, not me", STOLEN),
    ("login alert from another city, not me", STOLEN),
    ("我的账户有人在用，马上帮我冻结", STOLEN),
    ("I want a refund", "refund_request"),
    ("怎么申请退款", "refund_request"),
    ("the merchant agreed to refund, what do I do", "refund_request"),
    ("hi", "greeting"),
    ("你好", "greeting"),
]


@pytest.mark.parametrize(("text", "expected"), ISSUE_CASES)
def test_the_issues_cases_go_where_they_belong(router, text, expected):
    decision = router.decide(text)
    assert decision.best == expected, (text, decision)
    if expected == STOLEN:
        assert decision.kind in ("answer", "safety")


def _pipeline_decisions(router, examples):
    """What a user gets: the freeze flow's own words first, then the router."""
    from handlers.freeze import wants_freeze
    from tgbot.answers.router import Decision

    decisions = router.decide_all([e.text for e in examples])
    return [
        Decision("answer", (STOLEN,), (1.0,)) if wants_freeze(e.text) else d
        for e, d in zip(examples, decisions, strict=True)
    ]


@pytest.fixture(scope="module")
def frozen_result(router):
    frozen = _frozen("router_eval.tsv", ROUTER_EVAL_SHA256)
    return report(frozen, _pipeline_decisions(router, frozen))


def test_frozen_router_split_meets_the_issues_bar(frozen_result, capsys):
    """Issue 15's acceptance bar on the frozen split (never trained or tuned on): >= 95 %
    top-1 per language, 0 safety misroutes, out of scope answered with an article <= 10 %
    per language. Measured after round 2 (docs/answers.md): top-1 zh 96.0 %, en 95.9 %;
    out of scope answered zh 2.3 %, en 9.5 %; no theft message offered anything but the
    freeze first."""
    result = frozen_result
    with capsys.disabled():
        print(
            "\nrouter, frozen split: "
            + ", ".join(
                f"{g} top-1 {result.accuracy(g):.1%} at once {result.at_once_rate(g):.1%} "
                f"out of scope answered {result.oos_answered_rate(g):.1%}"
                for g in ("zh", "en")
            )
            + f"; safety misroutes {result.safety_misroutes}"
        )
    assert result.safety_misroutes == []
    assert result.oos_answered_rate("zh") <= 0.10 and result.oos_answered_rate("en") <= 0.10
    assert result.accuracy("zh") >= 0.95 and result.accuracy("en") >= 0.95


def test_old_frozen_split(router, capsys):
    """The project's first frozen split (its own team's questions) still routes well."""
    frozen = _frozen("questions_eval.tsv", OLD_EVAL_SHA256)
    result = report(frozen, _pipeline_decisions(router, frozen))
    with capsys.disabled():
        print(
            f"\nrouter, old frozen split: zh {result.accuracy('zh'):.1%}, "
            f"en {result.accuracy('en'):.1%}; out of scope answered "
            f"{result.oos_answered_rate():.1%}"
        )
    assert result.safety_misroutes == []
    assert result.accuracy("zh") >= 0.85 and result.accuracy("en") >= 0.85
    assert result.oos_answered_rate() <= 0.10


# --- stats -----------------------------------------------------------------------------------


async def test_repository_counts_answered_helpful_and_escalated(tmp_path):
    db = await Database.open(tmp_path / "bot.db")
    try:
        await migrate(db)
        repo = AnswerRepository(db)
        first = await repo.record(1, "en", "payment failed", ANSWERED, "payment_failed")
        second = await repo.record(1, "zh_Hans", "退款", CANDIDATES)
        third = await repo.record(2, "en", "my account thing", UNMATCHED)
        assert not await repo.feedback(second, 1, True)  # nothing shown yet
        assert await repo.choose(second, 1, "refund_rules")
        assert not await repo.choose(second, 2, "fees")  # not their question
        assert not await repo.choose(third, 2, "fees")  # nothing to choose from
        assert await repo.feedback(first, 1, True)
        assert not await repo.feedback(first, 1, False)  # the first press counts
        assert await repo.feedback(second, 1, False)
        assert not await repo.feedback(second, 2, True)
        assert await repo.escalated(second, 1, ticket_id=7)
        assert not await repo.escalated(second, 1, ticket_id=8)
        assert await repo.escalated(third, 2, ticket_id=9)
        record = await repo.get(second)
        assert record.article == "refund_rules" and record.helpful is False
        assert record.ticket_id == 7 and record.question == "退款"
        stats = await repo.stats()
        assert (stats.questions, stats.answered, stats.candidates, stats.unmatched) == (3, 2, 0, 1)
        assert (stats.helpful, stats.not_helpful, stats.escalated) == (1, 1, 2)
        by_article = {a.article: a for a in stats.articles}
        assert by_article["refund_rules"].escalated == 1
        assert by_article["payment_failed"].helpful == 1
        assert (await repo.stats(since=record.created_at + 3600)).questions == 0
        assert await repo.forget_questions(before=record.created_at + 1) == 3
        assert (await repo.get(first)).question == ""
    finally:
        await db.close()
