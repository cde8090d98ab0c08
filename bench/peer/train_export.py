#!/usr/bin/env python3
"""Trains the peer benchmark's forests and dumps them for the ONNX exporter.

Usage: train_export.py OUT_DIR

For each dataset bundled with scikit-learn (no download):
  forest       breast_cancer: 2 classes, 30 features; exercises onnxruntime's binary convention
  forest-wine  wine: 3 classes, 13 features; the multiclass convention
it trains RandomForestClassifier(n_estimators=100, random_state=0) on 75% of the rows and writes
  OUT_DIR/<model>.joblib  the fitted model, as the FastAPI app loads it
  OUT_DIR/<model>.json    the tree arrays (thresholds already rounded down to float32), classes_,
                          the test rows (float32) and sklearn's predict / predict_proba on them

Test rows: every row of the dataset, plus split-edge rows: a row whose feature sits exactly on a
split's float32 threshold, and one a float32 step above it (the cases where a threshold rounded to
nearest instead of down would send the row the wrong way).
"""
import json
import os
import sys

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

N_TREES = 100
EDGE_SPLITS = 150  # split-edge rows: 2 per sampled split


def floor_f32(t):
    """The largest float32 <= t (t float64). sklearn compares the float32-cast feature, promoted to
    float64, with `x <= t`; for a float32 x that is exactly `x <= floor_f32(t)`, which is what
    onnxruntime's float32 comparison then computes."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


def f32_json(v):
    """A float32 as the shortest decimal that reads back to it (both servers cast JSON numbers to
    float32, so this is the same input on both sides and keeps request bodies short)."""
    return float(repr(np.float32(v)).removeprefix('np.float32(').removesuffix(')'))


def tree_dump(est):
    t = est.tree_
    leaf = t.children_left == -1
    thresholds = [float(floor_f32(x)) if not l else 0.0 for x, l in zip(t.threshold, leaf)]
    value = t.value[:, 0, :]  # [nodes, classes]: weighted class counts (bootstrap)
    sums = value.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1
    return {
        'children_left': t.children_left.tolist(),
        'children_right': t.children_right.tolist(),
        'feature': t.feature.tolist(),
        'threshold': thresholds,
        'threshold_f64': [float(x) for x in t.threshold],
        # per-leaf normalized class distribution, as DecisionTreeClassifier.predict_proba returns it
        'proba': (value / sums).tolist(),
    }


def edge_rows(model, X, rng):
    rows = []
    for _ in range(EDGE_SPLITS):
        est = model.estimators_[rng.integers(len(model.estimators_))]
        t = est.tree_
        splits = np.flatnonzero(t.children_left != -1)
        node = splits[rng.integers(len(splits))]
        f, thr = int(t.feature[node]), float(t.threshold[node])
        base = X[rng.integers(len(X))].copy()
        on = floor_f32(thr)
        above = np.nextafter(on, np.float32(np.inf))
        for v in (on, above):
            r = base.copy()
            r[f] = v
            rows.append(r)
    return np.array(rows, dtype=np.float32)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    summary = {}
    for name, dataset, loader in (('forest', 'breast_cancer', load_breast_cancer), ('forest-wine', 'wine', load_wine)):
        data = loader()
        X = data.data.astype(np.float32)
        y = data.target
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        model = RandomForestClassifier(n_estimators=N_TREES, random_state=0)
        model.fit(X_train, y_train)
        joblib.dump(model, os.path.join(out, f'{name}.joblib'))

        rng = np.random.default_rng(0)
        rows = np.concatenate([X, edge_rows(model, X, rng)])
        # The JSON decimals, read back: exactly what either server sees.
        rows_json = [[f32_json(v) for v in r] for r in rows]
        Xq = np.array(rows_json, dtype=np.float32)
        assert np.array_equal(Xq, rows), 'float32 rows do not survive the JSON round trip'
        proba = model.predict_proba(Xq)
        label = model.predict(Xq)
        dump = {
            'name': name,
            'dataset': dataset,
            'sklearn': sklearn.__version__,
            'n_features': int(model.n_features_in_),
            'classes': [int(c) for c in model.classes_],
            'n_trees': len(model.estimators_),
            'trees': [tree_dump(e) for e in model.estimators_],
            'rows': rows_json,
            'n_dataset_rows': len(X),
            'n_edge_rows': len(rows) - len(X),
            'expected': {'label': [int(v) for v in label], 'probabilities': proba.tolist()},
            'test_accuracy': float(model.score(X_test, y_test)),
        }
        with open(os.path.join(out, f'{name}.json'), 'w') as fh:
            json.dump(dump, fh)
        summary[name] = {
            'dataset': dataset,
            'classes': dump['classes'],
            'n_features': dump['n_features'],
            'nodes': int(sum(e.tree_.node_count for e in model.estimators_)),
            'rows': len(rows),
            'test_accuracy': dump['test_accuracy'],
        }
    print(json.dumps({'sklearn': sklearn.__version__, 'numpy': np.__version__, 'models': summary}))


if __name__ == '__main__':
    main()
