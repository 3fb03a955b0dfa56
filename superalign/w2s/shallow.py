"""The shallow reader used as a weak supervisor: TF-IDF word uni+bigrams + logistic regression (scikit-learn).

A bag of words is a genuinely weaker reader than a pretrained LM, but only if it is trained properly: a linear head
on standardized hashed counts (what `hashing` is) reaches 0.56 on sarcasm with 320 labels where TF-IDF + logistic
regression reaches 0.70, so a weak supervisor built that way would be weak because of its optimizer, not its
capacity. The vocabulary and IDF are fitted on the training rows only; the regularization strength is chosen on the
validation rows against the labels given for them (gold for the weak model and the control), like every other
model's early stopping. Multiple-choice tasks: one binary "is this the right candidate" model over all candidate
texts, the option with the highest score wins.
"""
from __future__ import annotations

import numpy as np

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def fit_tfidf(task, train_idx: np.ndarray, targets: np.ndarray, val_idx: np.ndarray, val_targets: np.ndarray,
              seed: int) -> tuple[np.ndarray, dict]:
    """Class probabilities for every example from the C (of `C_GRID`) whose validation predictions best match
    `val_targets`; soft targets are hardened to their argmax (a logistic regression takes class labels)."""
    from scipy.special import softmax
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from superalign.w2s.probe import val_score
    m = len(task.texts[0])
    y = np.asarray(targets).argmax(-1)
    if task.choice:  # candidate j of item i is positive when j is the item's label
        rows = [t for i in train_idx for t in task.texts[i]]
        labels = np.array([int(j == c) for c in y for j in range(m)])
    else:
        rows, labels = [task.texts[i][0] for i in train_idx], y
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vec.fit_transform(rows)
    x_all = vec.transform([t for ts in task.texts for t in ts])

    def probs_of(clf) -> np.ndarray:
        if task.choice:
            return softmax(clf.decision_function(x_all).reshape(len(task.texts), m), axis=-1)
        p = np.zeros((len(task.texts), task.k))
        p[:, clf.classes_] = clf.predict_proba(x_all)
        return p

    best, history = None, []
    for i, c in enumerate(C_GRID):
        if len(set(labels.tolist())) < 2:
            break
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x_train, labels)
        p = probs_of(clf).astype(np.float32)
        score = val_score(p[val_idx], val_targets)
        history.append([round(score[0], 6), round(score[1], 6)])
        if best is None or score > best[0]:
            best = (score, i, p)
    if best is None:  # one class only: predict it
        p = np.zeros((len(task.texts), task.k), np.float32)
        p[:, int(labels[0]) if len(labels) else 0] = 1.0
        return p, {"epoch": np.int64(0), "C": np.float64(np.nan), "val_history": np.zeros((0, 2))}
    _, i, p = best
    return p, {"epoch": np.int64(i), "C": np.float64(C_GRID[i]), "val_history": np.array(history)}
