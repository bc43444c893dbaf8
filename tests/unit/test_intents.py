"""Explicit requests that work from anywhere: strict enough to run before every flow step."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tgbot.intents import asks_for_human, is_complaint, says_not_solved

HUMAN_ZH = ["转人工", "人工客服", "人工", "找客服", "客服", "真人"]
HUMAN_EN = ["agent", "human", "a human", "customer service", "real person", "live agent",
            "operator"]  # fmt: skip
HUMAN = HUMAN_ZH + HUMAN_EN
ZH_POLITE = ["", "请", "麻烦", "帮我", "我要", "我想"]
EN_POLITE = ["", "please ", "can i talk to ", "i want to speak to ", "i'd like to chat with "]
ENDS = ["", "!", "！", "?", "？", "。", " 🙏", "~"]
#: Words a user writes about something else, around which "agent" or 客服 may appear.
OTHER = ["charged", "me", "twice", "fake", "called", "电话", "是多少", "说", "要", "验证码",
         "refund", "my", "card", "冒充", "scam"]  # fmt: skip


@st.composite
def polite_request(draw):
    """A request for a person, with polite words of its own language and punctuation."""
    if draw(st.booleans()):
        return draw(st.sampled_from(ZH_POLITE)) + draw(st.sampled_from(HUMAN_ZH))
    text = draw(st.sampled_from(EN_POLITE)) + draw(st.sampled_from(HUMAN_EN))
    return text.upper() if draw(st.booleans()) else text


@given(polite_request(), st.sampled_from(ENDS))
def test_a_request_for_a_person_with_polite_words_and_punctuation_is_one(request, end):
    assert asks_for_human(request + end)


@given(st.sampled_from(HUMAN), st.lists(st.sampled_from(OTHER), min_size=1, max_size=4))
def test_a_person_word_inside_another_sentence_is_not_a_request(word, others):
    # "the agent charged me twice", "客服说要验证码": about something else, the router reads it
    assert not asks_for_human(" ".join([word, *others]))
    assert not asks_for_human(" ".join([*others, word, *others]))


@given(st.text(max_size=200))
def test_any_text_is_judged_without_error_and_long_text_is_never_a_request(text):
    asks_for_human(text)
    is_complaint(text)
    says_not_solved(text)
    assert not asks_for_human(text + " " * 3 + "x" * 80)


@given(st.sampled_from(["我要投诉", "投诉", "I want to complain", "I want to make a complaint"]),
       st.text(max_size=50))  # fmt: skip
def test_a_complaint_opens_with_its_words_and_may_go_on(opening, rest):
    assert is_complaint(f"{opening}，{rest}") and is_complaint(f"{opening}. {rest}")


def test_not_solved_is_the_whole_message_only():
    for text in ("没解决", "还是没解决", "问题没有解决", "还是不行", "not solved",
                 "It is still not working", "didn't help", "Not fixed!"):  # fmt: skip
        assert says_not_solved(text), text
    for text in ("我的账户还是冻结的，怎么解冻", "how do I unfreeze my account", "thanks",
                 "谢谢", "solved", "the payment is not solved by the app, how to pay"):  # fmt: skip
        assert not says_not_solved(text), text
