"""Explicit requests that work from anywhere: "a human, please", "I want to complain",
"it is not solved".

These are deliberately strict (what the user says is *only* the request, or starts with it),
so they can run before any flow step without taking a step's real input: "转人工" typed at a
confirmation or in the transaction search reaches a human, while "the agent charged me twice"
or "fake agent called me" does not (the free-text router reads those).
"""

from __future__ import annotations

import re
import unicodedata

from .text import normalize_input

#: Polite words around a request ("请帮我转人工", "can I talk to a human please").
_ZH_BEFORE = r"(?:请|麻烦|麻烦你|帮我|给我|我要|我想|我想要|我需要|需要|能不能|可以|可不可以|快)*"
_ZH_AFTER = r"(?:吧|呢|啊|呀|吗|谢谢|好吗|可以吗|服务)*"
_EN_BEFORE = (
    r"(?:(?:hi|hello|hey|please|pls|plz|can|could|may|i|i'd|i'm|we|we'd|you|let me|want|"
    r"wanna|would|like|need|to|'d|id|talk|speak|chat|connect|me|get|put|through|with|a|an|"
    r"the|real|live|actual|some|one|someone|somebody)\s+)*"
)
_EN_AFTER = r"(?:\s+(?:please|pls|plz|now|asap|thanks|thank you))*"

_HUMAN_ZH = (
    r"(?:转)?人工(?:客服|服务|坐席)?|转人工|找人工|真人(?:客服)?|(?:找|要|联系|接|转|叫|呼叫)?"
    r"(?:在线)?客服(?:人员|小姐姐|在吗|在不在)?|有人吗|有没有人"
)
_HUMAN_EN = (
    r"(?:human|person|agent|operator|representative|rep|staff|someone|somebody|"
    r"(?:customer\s+)?(?:service|support)(?:\s+(?:agent|person|staff|team))?|"
    r"(?:human|live|real)\s+(?:agent|person|support))s?"
)
_COMPLAIN_ZH = r"(?:我要|我想|我需要|我想要)?(?:投诉|申诉|举报你们|投诉你们|投诉客服)"
_COMPLAIN_EN = (
    r"(?:i\s+)?(?:want|wanna|would like|'d like|need)\s+to\s+(?:complain|make a complaint|"
    r"file a complaint|lodge a complaint)|(?:i\s+have\s+a\s+|a\s+)?complaint|complain"
)

_HUMAN = re.compile(
    rf"^(?:{_ZH_BEFORE}(?:{_HUMAN_ZH}){_ZH_AFTER}|{_EN_BEFORE}(?:{_HUMAN_EN}){_EN_AFTER})$",
    re.IGNORECASE,
)
#: A complaint starts with its words and may go on ("我要投诉，退款太慢了").
_COMPLAINT = re.compile(rf"^(?:{_ZH_BEFORE}{_COMPLAIN_ZH}|{_COMPLAIN_EN})(?:\W|$)", re.IGNORECASE)
#: "Not solved" after a ticket closed: the whole message says it, nothing else.
_NOT_SOLVED = re.compile(
    r"^(?:(?:问题|我的问题|这个问题|事情)?(?:还|还是|并|根本)?(?:没|没有|未)(?:有)?(?:解决|搞定|处理好?|好)"
    r"(?:啊|呀|呢|了)?|还是不行|还不行|没用|不行|没解决|未解决|"
    r"(?:it'?s\s+|it\s+is\s+|that'?s\s+|this\s+is\s+|still\s+|problem\s+)*"
    r"(?:not\s+(?:solved|fixed|resolved|working|done)|unsolved|unresolved)|"
    r"(?:it\s+)?(?:still\s+)?(?:does\s*n[o']?t|did\s*n[o']?t|doesnt|didnt)\s+(?:work|help)|"
    r"still\s+(?:broken|not\s+working|the\s+same)|no\s+it'?s\s+not(?:\s+solved)?)$",
    re.IGNORECASE,
)
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_INNER_PUNCT = re.compile(r"[,，、。!！?？~～…]+")


def _clean(text: str) -> str:
    """Lower-case, NFKC, no emoji or punctuation at the ends, single spaces."""
    text = normalize_input(unicodedata.normalize("NFKC", text)).lower()
    text = _EDGES.sub("", text)
    return text.replace("’", "'")


def asks_for_human(text: str) -> bool:
    """Return True if the whole message asks for a person ("转人工", "人工客服", "agent")."""
    cleaned = _clean(text)
    if not cleaned or len(cleaned) > 60:
        return False
    return bool(_HUMAN.match(_INNER_PUNCT.sub(" ", cleaned).strip()))


def is_complaint(text: str) -> bool:
    """Return True if the message opens with a complaint ("我要投诉…", "I want to complain")."""
    cleaned = _clean(text)
    return bool(cleaned) and bool(_COMPLAINT.match(cleaned))


def says_not_solved(text: str) -> bool:
    """Return True if the whole message says the problem is not solved ("没解决", "still not
    working"): after a ticket closed, this reopens it; any other text is a new question."""
    cleaned = _INNER_PUNCT.sub(" ", _clean(text)).strip()
    if not cleaned or len(cleaned) > 40:
        return False
    return bool(_NOT_SOLVED.match(cleaned))
