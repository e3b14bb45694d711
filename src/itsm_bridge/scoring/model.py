"""A small, transparent text model learned from a team's own labels.

L2-regularised logistic regression over TF-IDF word unigrams and bigrams, fitted in pure Python
with the dual coordinate-descent method liblinear uses (Yu, Huang & Lin, 2011), so the core
needs no numpy or scikit-learn; a few thousand labelled items train in seconds. The model is a
JSON file a person can read: every feature with its IDF and weight. When combined with the
rules, its log-odds are one more piece of evidence and its strongest features are the reason.

The objective is scikit-learn's: ``0.5 * ||w||^2 + C * sum(log(1 + exp(-y * (w.x + b))))``
(the intercept is an extra feature of constant value 1, regularised like liblinear's).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import mul
from pathlib import Path
from typing import Any

from itsm_bridge.errors import DataError, InvalidOptionsError
from itsm_bridge.schema import Label

__all__ = ["TextModel", "TrainingParams"]

MODEL_FORMAT = "itsm-bridge/text-model"
_WORD = re.compile(r"[^\W\d_][^\W_]+")


@dataclass(frozen=True, slots=True)
class TrainingParams:
    """Hyper-parameters; the defaults were chosen by 5-fold cross-validation on NLBSE'24 train
    with the one-standard-error rule (``python -m itsm_bridge.scoring.evaluate_datasets tune``).

    ``C`` is the inverse regularisation strength; ``min_df`` drops features seen in fewer
    documents; ``title_features`` adds title-only copies of the title's features (a title states
    the work; a body is often boilerplate); ``max_chars`` truncates long descriptions.
    """

    C: float = 10.0
    min_df: int = 2
    ngrams: int = 2
    title_features: bool = True
    max_chars: int = 3000
    sublinear_tf: bool = True
    max_features: int | None = None
    epochs: int = 50
    tolerance: float = 0.1
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "min_df": self.min_df,
            "ngrams": self.ngrams,
            "title_features": self.title_features,
            "max_chars": self.max_chars,
            "sublinear_tf": self.sublinear_tf,
            "max_features": self.max_features,
            "epochs": self.epochs,
            "tolerance": self.tolerance,
            "seed": self.seed,
        }


def _terms(title: str | None, description: str | None, params: TrainingParams) -> Counter[str]:
    counts: Counter[str] = Counter()
    title_words = _WORD.findall(title.lower()) if title else []
    body = description[: params.max_chars].lower() if description else ""
    body_words = _WORD.findall(body) if body else []
    for words, prefix in ((title_words, ""), (body_words, "")):
        counts.update(prefix + w for w in words)
        if params.ngrams >= 2 and len(words) > 1:
            counts.update(f"{prefix}{a} {b}" for a, b in itertools.pairwise(words))
    if params.title_features and title_words:
        counts.update("title:" + w for w in title_words)
        if params.ngrams >= 2 and len(title_words) > 1:
            counts.update(f"title:{a} {b}" for a, b in itertools.pairwise(title_words))
    return counts


def _as_pair(text: str | tuple[str | None, str | None]) -> tuple[str | None, str | None]:
    if isinstance(text, str):
        return text, None
    return text[0], text[1]


def _label_sign(label: Any) -> int:
    if isinstance(label, bool):
        return 1 if label else -1
    if isinstance(label, (int, float)) and label in (0, 1):
        return 1 if label == 1 else -1
    value = label.value if isinstance(label, Label) else str(label).strip().lower()
    if value in ("business-facing", "business"):
        return 1
    if value in ("inward-facing", "inward"):
        return -1
    raise DataError(f"training label must be business-facing or inward-facing, got {label!r}")


@dataclass
class TextModel:
    """A fitted model: ``features`` maps each term to ``(idf, weight)``."""

    features: dict[str, tuple[float, float]]
    intercept: float
    params: TrainingParams = field(default_factory=TrainingParams)
    info: dict[str, Any] = field(default_factory=dict)

    # -- training ------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Sequence[str | tuple[str | None, str | None]],
        labels: Sequence[Any],
        params: TrainingParams | None = None,
        *,
        offsets: Sequence[float] | None = None,
        **overrides: Any,
    ) -> TextModel:
        """Fit on ``texts`` (strings, or ``(title, description)`` pairs) and their labels.

        Labels are ``business-facing``/``inward-facing`` (or ``True``/``1`` for business).
        ``offsets`` are log-odds the model is added to (the rules' evidence for each text): the
        model then learns what the rules miss, and ``rules + model`` is exactly what was fitted.
        Keyword arguments override fields of ``params`` (``C=4.0``, ``min_df=3``...).
        """
        p = params or TrainingParams()
        if overrides:
            values = p.as_dict()
            unknown = set(overrides) - set(values)
            if unknown:
                raise InvalidOptionsError(f"unknown training parameter(s): {sorted(unknown)}")
            values.update(overrides)
            p = TrainingParams(**values)
        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels")
        if offsets is not None and len(offsets) != len(texts):
            raise DataError(f"{len(texts)} texts but {len(offsets)} offsets")
        y = [_label_sign(label) for label in labels]
        if len(set(y)) < 2:
            raise DataError("training needs examples of both business-facing and inward-facing")
        docs = [_terms(*_as_pair(t), p) for t in texts]
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        kept = [term for term, n in df.items() if n >= p.min_df]
        if p.max_features is not None and len(kept) > p.max_features:
            kept.sort(key=lambda term: (-df[term], term))
            kept = kept[: p.max_features]
        kept.sort()
        index = {term: i for i, term in enumerate(kept)}
        n_docs = len(docs)
        idf = [math.log((1 + n_docs) / (1 + df[term])) + 1.0 for term in kept]
        rows = [_vectorise(doc, index, idf, p.sublinear_tf) for doc in docs]
        bias_index = len(kept)
        rows = [([*idx, bias_index], [*vals, 1.0]) for idx, vals in rows]
        weights, epochs = _dual_cd(rows, y, bias_index + 1, p, offsets)
        features = {term: (idf[i], weights[i]) for term, i in index.items()}
        info = {
            "documents": n_docs,
            "business": sum(1 for v in y if v > 0),
            "inward": sum(1 for v in y if v < 0),
            "features": len(kept),
            "epochs": epochs,
            "residual_of_rules": offsets is not None,
        }
        return cls(features=features, intercept=weights[bias_index], params=p, info=info)

    # -- prediction ----------------------------------------------------------------------------

    def contributions(
        self, title: str | None, description: str | None = None
    ) -> tuple[float, list[tuple[str, float]]]:
        """The log-odds and each present feature's contribution ``weight * value``."""
        doc = _terms(title, description, self.params)
        values: list[tuple[str, float]] = []
        norm = 0.0
        features = self.features
        sublinear = self.params.sublinear_tf
        for term, count in doc.items():
            entry = features.get(term)
            if entry is None:
                continue
            tf = 1.0 + math.log(count) if sublinear else float(count)
            value = tf * entry[0]
            values.append((term, value))
            norm += value * value
        if not values:
            return self.intercept, []
        scale = 1.0 / math.sqrt(norm)
        parts = [(term, features[term][1] * value * scale) for term, value in values]
        return self.intercept + sum(c for _, c in parts), parts

    def log_odds(self, title: str | None, description: str | None = None) -> float:
        return self.contributions(title, description)[0]

    def predict_proba(self, title: str | None, description: str | None = None) -> float:
        """P(business-facing) for one text."""
        z = max(-35.0, min(35.0, self.log_odds(title, description)))
        return 1.0 / (1.0 + math.exp(-z))

    def explain(
        self, title: str | None, description: str | None = None, top: int = 3
    ) -> tuple[float, str]:
        """The log-odds and a one-line reason naming the strongest contributing features."""
        z, parts = self.contributions(title, description)
        if not parts:
            return z, "text model: no known words (intercept only)"
        parts.sort(key=lambda p: (-abs(p[1]), p[0]))
        shown = ", ".join(f"'{term}' {value:+.2f}" for term, value in parts[:top])
        return z, f"text model: {shown}"

    def top_features(self, n: int = 20) -> dict[str, list[tuple[str, float]]]:
        """The most business-facing and most inward-facing features by weight."""
        ranked = sorted(self.features.items(), key=lambda kv: (kv[1][1], kv[0]))
        return {
            "business-facing": [(t, w) for t, (_, w) in reversed(ranked[-n:])],
            "inward-facing": [(t, w) for t, (_, w) in ranked[:n]],
        }

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": 1,
            "params": self.params.as_dict(),
            "info": self.info,
            "intercept": self.intercept,
            "features": {
                t: [round(i, 6), round(w, 8)] for t, (i, w) in sorted(self.features.items())
            },
        }

    def to_json(self) -> str:
        """The model file's text (what :meth:`save` writes)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=0)

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def save(self, path: str | Path) -> None:
        """Write the model as JSON (atomically: a failed write leaves ``path`` untouched)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> TextModel:
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidOptionsError(f"{file}: cannot read model: {exc.strerror}") from None
        except ValueError as exc:
            raise InvalidOptionsError(f"{file}: not a JSON model file: {exc}") from None
        return cls.from_dict(data, source=str(file))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<model>") -> TextModel:
        if not isinstance(data, Mapping) or data.get("format") != MODEL_FORMAT:
            raise InvalidOptionsError(f"{source}: not an itsm-bridge text model (format)")
        try:
            params = TrainingParams(**data["params"])
            features = {str(t): (float(v[0]), float(v[1])) for t, v in data["features"].items()}
            intercept = float(data["intercept"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidOptionsError(f"{source}: malformed model: {exc}") from None
        return cls(
            features=features, intercept=intercept, params=params, info=dict(data.get("info", {}))
        )


def _vectorise(
    doc: Mapping[str, int], index: Mapping[str, int], idf: Sequence[float], sublinear: bool
) -> tuple[list[int], list[float]]:
    pairs = []
    for term, count in doc.items():
        i = index.get(term)
        if i is not None:
            tf = 1.0 + math.log(count) if sublinear else float(count)
            pairs.append((i, tf * idf[i]))
    pairs.sort()
    norm = math.sqrt(sum(v * v for _, v in pairs)) or 1.0
    return [i for i, _ in pairs], [v / norm for _, v in pairs]


def _dual_cd(
    rows: Sequence[tuple[list[int], list[float]]],
    y: Sequence[int],
    n_features: int,
    p: TrainingParams,
    offsets: Sequence[float] | None = None,
) -> tuple[list[float], int]:
    """liblinear's ``solve_l2r_lr_dual``: coordinate descent on the dual, Newton per coordinate.

    With ``offsets`` the margin of sample i is ``w.x_i + o_i``; the dual only changes in the
    linear term, so the coordinate step uses ``y_i (w.x_i + o_i)`` where liblinear has
    ``y_i w.x_i`` (at the optimum ``alpha_i = C * sigmoid(-y_i (w.x_i + o_i))``).
    """
    margin_offsets = list(offsets) if offsets is not None else [0.0] * len(rows)
    n = len(rows)
    c = float(p.C)
    w = [0.0] * n_features
    alpha = [min(0.001 * c, 1e-8)] * n
    for i, (idx, vals) in enumerate(rows):
        step = y[i] * alpha[i]
        for j, v in zip(idx, vals):
            w[j] += step * v
    xtx = [sum(v * v for v in vals) for _, vals in rows]
    order = list(range(n))
    rng = random.Random(p.seed)
    inner_eps, inner_eps_min = 1e-2, min(1e-8, p.tolerance)
    epoch = 0
    while epoch < p.epochs:
        rng.shuffle(order)
        newton_steps = 0
        g_max = 0.0
        for i in order:
            idx, vals = rows[i]
            yi = y[i]
            a = xtx[i]
            b = yi * (sum(map(mul, map(w.__getitem__, idx), vals)) + margin_offsets[i])
            # alpha[i] and c - alpha[i] are the two dual variables of sample i.
            a_i, a_other = alpha[i], c - alpha[i]
            sign = 1.0
            if 0.5 * a * (a_other - a_i) + b < 0:
                a_i, a_other = a_other, a_i
                sign = -1.0
            old = a_i
            z = old
            if c - z < 0.5 * c:
                z *= 0.1
            gp = a * (z - old) + sign * b + math.log(z / (c - z))
            g_max = max(g_max, abs(gp))
            inner = 0
            while inner <= 100 and abs(gp) >= inner_eps:
                gpp = a + c / (c - z) / z
                candidate = z - gp / gpp
                z = z * 0.1 if candidate <= 0 else min(candidate, c * (1 - 1e-12))
                gp = a * (z - old) + sign * b + math.log(z / (c - z))
                inner += 1
                newton_steps += 1
            if inner:
                new_alpha = z if sign > 0 else c - z
                delta = (new_alpha - alpha[i]) * yi
                alpha[i] = new_alpha
                for j, v in zip(idx, vals):
                    w[j] += delta * v
        epoch += 1
        if g_max < p.tolerance:
            break
        if newton_steps <= n / 10:
            inner_eps = max(inner_eps_min, 0.1 * inner_eps)
    return w, epoch


def teaches(label: Any) -> bool:
    """Whether a record with this ``label`` is a training example (undetermined ones are not)."""
    return label is not None and str(label).strip().lower() not in ("", "undetermined")


def train_on_records(
    records: Iterable[Mapping[str, Any]], params: TrainingParams | None = None, **overrides: Any
) -> TextModel:
    """Fit on labelled JSONL records (``title``, optional ``description``, ``label``)."""
    texts: list[tuple[str | None, str | None]] = []
    labels: list[str] = []
    for record in records:
        label = record.get("label")
        if not teaches(label):
            continue
        texts.append((str(record.get("title") or ""), _opt_str(record.get("description"))))
        labels.append(str(label))
    return TextModel.train(texts, labels, params, **overrides)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
