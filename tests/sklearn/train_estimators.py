"""Trains every estimator `modelgate import sklearn` exports, for tests/sklearn/import-sklearn.test.ts.

    /usr/bin/python3 train_estimators.py OUT_DIR

On datasets bundled with scikit-learn (no download), small so the whole file runs in seconds. For
each kind, OUT_DIR/<kind>.pkl (joblib.dump), OUT_DIR/<kind>.samples.csv (a header and the first
rows: --smoke-from) and OUT_DIR/<kind>.json: the check rows and scikit-learn's answers on them,
computed here, independently of the importer:
  rows      every training row, then for tree models rows around split thresholds: a training
            row with one feature moved to the float32 input nearest the threshold (through the
            scaler, when there is one) and the two float32 values on either side of it
  answers   predict / predict_proba on the float32 rows, given as float64
Also OUT_DIR/refused-*.pkl, estimators the importer must refuse, and OUT_DIR/named-columns.pkl, a
model that knows its columns' names (fit on a DataFrame). Prints a JSON summary.
"""

import json
import os
import sys

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

EDGE_SPLITS = 60
SAMPLES = 12


def iris_names():
    """Iris with its class names as the labels: a classifier with string classes."""
    data = load_iris()
    return data.data, data.target_names[data.target]


KINDS = {
    # kind: (dataset, estimator)
    'random-forest-classifier': (load_breast_cancer, RandomForestClassifier(n_estimators=10, random_state=0)),
    'random-forest-classifier-multiclass': (
        load_wine,
        RandomForestClassifier(n_estimators=8, min_samples_leaf=3, class_weight='balanced', random_state=0),
    ),
    'extra-trees-classifier': (load_wine, ExtraTreesClassifier(n_estimators=10, min_samples_leaf=2, random_state=0)),
    'decision-tree-classifier': (load_wine, DecisionTreeClassifier(max_depth=4, random_state=0)),
    'gradient-boosting-classifier-binary': (
        load_breast_cancer,
        GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
    ),
    'gradient-boosting-classifier-multiclass': (
        load_wine,
        GradientBoostingClassifier(n_estimators=10, max_depth=2, learning_rate=0.3, random_state=0),
    ),
    'random-forest-regressor': (load_diabetes, RandomForestRegressor(n_estimators=10, random_state=0)),
    'extra-trees-regressor': (load_diabetes, ExtraTreesRegressor(n_estimators=10, min_samples_leaf=3, random_state=0)),
    'decision-tree-regressor': (load_diabetes, DecisionTreeRegressor(max_depth=6, random_state=0)),
    'gradient-boosting-regressor': (
        load_diabetes,
        GradientBoostingRegressor(n_estimators=20, loss='huber', random_state=0),
    ),
    'logistic-regression-binary': (
        load_breast_cancer,
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    ),
    'logistic-regression-binary-multinomial': (
        load_breast_cancer,
        make_pipeline(StandardScaler(), LogisticRegression(multi_class='multinomial', C=0.5, max_iter=2000)),
    ),
    'logistic-regression-multiclass': (load_iris, LogisticRegression(max_iter=2000)),
    'logistic-regression-ovr-string-classes': (
        iris_names,
        make_pipeline(StandardScaler(), LogisticRegression(multi_class='ovr', class_weight='balanced', max_iter=2000)),
    ),
    'linear-regression': (load_diabetes, LinearRegression()),
    'ridge': (load_diabetes, make_pipeline(StandardScaler(), Ridge(alpha=2.0))),
    'scaler-gradient-boosting-classifier': (
        load_breast_cancer,
        make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=10, random_state=0)),
    ),
    'scaler-random-forest-classifier': (
        load_wine,
        make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=8, random_state=0)),
    ),
    'scaler-extra-trees-regressor': (
        load_diabetes,
        make_pipeline(StandardScaler(with_mean=False), ExtraTreesRegressor(n_estimators=5, random_state=0)),
    ),
}

REFUSED = {
    'refused-svc': (load_iris, SVC()),
    'refused-kneighbors': (load_iris, make_pipeline(StandardScaler(), KNeighborsClassifier())),
    'refused-exponential-loss': (load_breast_cancer, GradientBoostingClassifier(n_estimators=2, loss='exponential')),
}


class Frame:
    """As much of a pandas DataFrame as scikit-learn reads column names from (no pandas here)."""

    def __init__(self, values, columns):
        self.values, self.columns = values, np.array(columns, dtype=object)
        self.shape = values.shape

    def __array__(self, dtype=None):
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self):
        return len(self.values)


def xy(loader):
    got = loader()
    X, y = got if isinstance(got, tuple) else (got.data, got.target)
    return X.astype(np.float32), y


def final_and_scaler(estimator):
    if isinstance(estimator, Pipeline):
        steps = [s for _, s in estimator.steps]
        return steps[-1], (steps[0] if isinstance(steps[0], StandardScaler) else None)
    return estimator, None


def edge_rows(estimator, X, rng):
    final, scaler = final_and_scaler(estimator)
    trees = getattr(final, 'estimators_', [final])
    trees = [t.tree_ for t in np.ravel(trees) if hasattr(t, 'tree_')]
    if not trees:
        return np.empty((0, X.shape[1]), dtype=np.float32)
    rows = []
    for _ in range(EDGE_SPLITS):
        tree = trees[rng.integers(len(trees))]
        splits = np.flatnonzero(tree.children_left != -1)
        if not len(splits):
            continue
        node = splits[rng.integers(len(splits))]
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        if scaler is not None:
            t = t * (scaler.scale_[f] if scaler.with_std else 1.0) + (scaler.mean_[f] if scaler.with_mean else 0.0)
        near = np.float32(t)
        below = np.nextafter(near, np.float32(-np.inf))
        above = np.nextafter(near, np.float32(np.inf))
        base = X[rng.integers(len(X))]
        for v in (below, near, above):
            row = base.copy()
            row[f] = v
            rows.append(row)
    return np.array(rows, dtype=np.float32)


def answers(estimator, rows):
    X = rows.astype(np.float64)
    if hasattr(estimator, 'predict_proba'):
        return {'label': estimator.predict(X).tolist(), 'probabilities': estimator.predict_proba(X).tolist()}
    return {'prediction': estimator.predict(X).tolist()}


def write_samples(path, X, n):
    header = ','.join(f'x{i}' for i in range(X.shape[1]))
    with open(path, 'w') as fh:
        fh.write(header + '\n')
        for row in X[:n]:
            fh.write(','.join(str(v) for v in row) + '\n')


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    summary = {}
    for kind, (loader, estimator) in KINDS.items():
        X, y = xy(loader)
        estimator.fit(X, y)
        joblib.dump(estimator, os.path.join(out, f'{kind}.pkl'))
        rng = np.random.default_rng(0)
        edges = edge_rows(estimator, X, rng)
        rows = np.concatenate([X, edges])
        # The rows as the shortest decimals of their float32 values: what JSON carries to the model.
        rows_json = [[float(str(v)) for v in r] for r in rows]
        assert np.array_equal(np.array(rows_json, dtype=np.float64).astype(np.float32), rows)
        with open(os.path.join(out, f'{kind}.json'), 'w') as fh:
            json.dump({'rows': rows_json, 'edgeRows': len(edges), 'answers': answers(estimator, rows)}, fh)
        write_samples(os.path.join(out, f'{kind}.samples.csv'), X, SAMPLES)
        summary[kind] = {'rows': len(rows), 'edgeRows': len(edges)}
    for kind, (loader, estimator) in REFUSED.items():
        X, y = xy(loader)
        joblib.dump(estimator.fit(X, y), os.path.join(out, f'{kind}.pkl'))
    X, y = xy(load_iris)
    named = LogisticRegression(max_iter=2000).fit(Frame(X, ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']), y)
    joblib.dump(named, os.path.join(out, 'named-columns.pkl'))
    print(json.dumps({'sklearn': sklearn.__version__, 'kinds': summary}))


if __name__ == '__main__':
    main()
