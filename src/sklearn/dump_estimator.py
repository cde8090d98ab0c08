"""The Python half of `modelgate import sklearn`: what only scikit-learn itself can say.

    python3 dump_estimator.py MODEL OUT [ROWS_CSV]

Loads the pickled estimator MODEL (unpickling runs code the file names: modelgate runs this in
its own process, never in the server), checks that modelgate exports it exactly, and writes one
JSON document to OUT:

  {"missing": "<module>"}   Python lacks a module this needs (numpy, scikit-learn, joblib)
  {"refused": "<why>"}      not an estimator modelgate exports, or rows it cannot read
  {"format": 1, ...}        the estimator as numbers (estimator-dump.ts is the schema): the
                            scaler, the trees or the coefficients, the classes, how scores become
                            answers; and scikit-learn's own answers on check rows, which the
                            exported model must give too

Check rows: the rows of ROWS_CSV (the smoke samples), then rows this script makes to probe the
places where an export goes wrong: for trees, pairs of rows on either side of a split's threshold
(the largest float32 input that goes left and the next one, which goes right), for linear models,
rows scattered around the samples. Every row is float32, as the ONNX input is, and scikit-learn
answers for those very values (as float64, as an application's numpy arrays are).

Anything else (a crash) exits non-zero with the traceback on stderr.
"""

import csv
import json
import sys
import warnings

try:
    import joblib
    import numpy as np
    import sklearn
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from sklearn.utils.validation import check_is_fitted
except ImportError as e:
    MISSING = e.name
else:
    MISSING = None

FORMAT = 1
EDGE_SPLITS = 100  # split-edge probes: two rows each
SCATTERED_ROWS = 50  # linear-model probes
# A class label travels through JSON as a number: beyond 2^53 it would arrive as another one.
MAX_EXACT_INT = 2**53
SEED = 0


class Refused(Exception):
    """The estimator or the rows are not something modelgate exports exactly; the message says why."""


# ---------------------------------------------------------------------------------------------
# Loading and unwrapping


def load(path):
    """The estimator, and the warnings scikit-learn gave while unpickling (another version's pickle)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            estimator = joblib.load(path)
        except Exception as e:  # noqa: BLE001 - whatever the pickle raised is the reason
            raise Refused(f'cannot load {path}: {type(e).__name__}: {e}') from e
    return estimator, sorted({str(w.message) for w in caught})


def unwrap(estimator):
    """(the StandardScaler in front or None, the final estimator)."""
    if type(estimator) is not Pipeline:
        return None, estimator
    steps = [step for _, step in estimator.steps if step is not None and not isinstance(step, str)]
    if not steps:
        raise Refused('the Pipeline has no estimator')
    *front, final = steps
    if len(front) > 1 or (front and type(front[0]) is not StandardScaler):
        names = ', '.join(type(s).__name__ for s in front)
        raise Refused(
            f'a Pipeline is exported with at most one StandardScaler in front of the estimator; this one has {names}'
        )
    return (front[0] if front else None), final


def scaler_dump(scaler):
    if scaler is None:
        return None
    # with_mean=False still computes mean_, but transform does not subtract it.
    return {
        'mean': floats(scaler.mean_) if scaler.with_mean else None,
        'scale': floats(scaler.scale_) if scaler.with_std else None,
    }


# ---------------------------------------------------------------------------------------------
# Estimators: each returns the score part of the dump and the trees (for the split-edge probes)


def forest_or_tree(estimator, classifier):
    if estimator.n_outputs_ != 1:
        raise Refused(f'{type(estimator).__name__} fit on {estimator.n_outputs_} outputs: only one is exported')
    trees = list(getattr(estimator, 'estimators_', [estimator]))
    n = len(classes_of(estimator)) if classifier else 1
    dumped = [tree_dump(t, tree_values(t, classifier), list(range(n))) for t in trees]
    # sklearn adds each tree's answer in order, then divides by the number of trees.
    score = {'kind': 'trees', 'nScores': n, 'trees': dumped, 'divideBy': len(trees), 'add': None}
    if not classifier:
        return score, 'identity', 'scores', trees
    return score, 'probabilities', 'probabilities', trees


def tree_values(tree, classifier):
    value = tree.tree_.value[:, 0, :]
    if not classifier:
        return value
    # As DecisionTreeClassifier.predict_proba: each leaf's class weights over their sum.
    normalizer = value.sum(axis=1, keepdims=True)
    normalizer[normalizer == 0.0] = 1.0
    return value / normalizer


def tree_dump(tree, values, targets):
    t = tree.tree_
    return {
        'left': t.children_left.tolist(),
        'right': t.children_right.tolist(),
        'feature': t.feature.tolist(),
        'threshold': floats(t.threshold),
        'values': [floats(v) for v in values],
        'targets': targets,
    }


def boosting(estimator, classifier):
    if classifier and estimator.loss not in ('log_loss', 'deviance'):
        raise Refused(
            f"GradientBoostingClassifier with loss='{estimator.loss}': only loss='log_loss' is exported"
        )
    init = estimator.init_
    if not (
        (isinstance(init, str) and init == 'zero')
        or (type(init) is DummyRegressor)
        or (type(init) is DummyClassifier and init.strategy != 'stratified')
    ):
        raise Refused(
            f'{type(estimator).__name__} with init={init!r}: only the default init (a constant prior) is exported'
        )
    stages, k = estimator.estimators_.shape
    rate = estimator.learning_rate
    # sklearn adds learning_rate * leaf value stage by stage to the init estimator's raw score.
    dumped = [
        tree_dump(estimator.estimators_[i, j], rate * estimator.estimators_[i, j].tree_.value[:, 0, :], [j])
        for i in range(stages)
        for j in range(k)
    ]
    # The init estimator's raw score, constant in X (checked above), as sklearn computes it: its
    # private helper, since the prior's log-odds formula has changed between versions.
    base = estimator._raw_predict_init(np.zeros((1, estimator.n_features_in_), dtype=np.float32))[0]
    score = {'kind': 'trees', 'nScores': k, 'trees': dumped, 'divideBy': 1, 'add': floats(base)}
    if not classifier:
        return score, 'identity', 'scores', list(estimator.estimators_.ravel())
    # sklearn 1.2: binary proba [1 - expit(raw), expit(raw)], K classes softmax(raw); the label is
    # the argmax of those probabilities.
    link = 'logistic' if k == 1 else 'softmax'
    return score, link, 'probabilities', list(estimator.estimators_.ravel())


def logistic(estimator):
    coef, intercept = linear_parts(estimator)
    n_classes = len(classes_of(estimator))
    multi_class = getattr(estimator, 'multi_class', 'auto')
    if multi_class == 'deprecated':
        multi_class = 'auto'
    if multi_class not in ('auto', 'ovr', 'multinomial', 'warn'):
        raise Refused(f"LogisticRegression with multi_class='{multi_class}' is not exported")
    # As LogisticRegression.predict_proba decides between one-vs-rest and the softmax.
    ovr = multi_class in ('ovr', 'warn') or (
        multi_class == 'auto' and (n_classes <= 2 or estimator.solver in ('liblinear', 'newton-cholesky'))
    )
    score = {'kind': 'linear', 'coef': coef, 'intercept': intercept}
    # predict takes the argmax of the decision function (binary: decision > 0), not of the
    # probabilities, which saturate at 1.
    if n_classes == 2 and not ovr:
        # softmax of [-d, d]: a second row of coefficients, negated (IEEE negation is exact).
        score = {'kind': 'linear', 'coef': [[-c for c in coef[0]], coef[0]], 'intercept': [-intercept[0], intercept[0]]}
        return score, 'softmax', 'scores'
    if n_classes == 2:
        return score, 'logistic', 'scores'
    return score, 'ovr' if ovr else 'softmax', 'scores'


def regression(estimator):
    coef, intercept = linear_parts(estimator)
    if len(coef) != 1:
        raise Refused(f'{type(estimator).__name__} fit on {len(coef)} targets: only one is exported')
    return {'kind': 'linear', 'coef': coef, 'intercept': intercept}, 'identity', 'scores'


def linear_parts(estimator):
    coef = estimator.coef_
    if hasattr(coef, 'toarray'):  # sparsify()
        coef = coef.toarray()
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.broadcast_to(np.asarray(estimator.intercept_, dtype=np.float64), (coef.shape[0],))
    return [floats(row) for row in coef], floats(intercept)


# class -> (classifier?, how to dump it); exact classes only: a subclass may predict otherwise.
ESTIMATORS = (
    {
        RandomForestClassifier: (True, lambda e: forest_or_tree(e, True)),
        ExtraTreesClassifier: (True, lambda e: forest_or_tree(e, True)),
        DecisionTreeClassifier: (True, lambda e: forest_or_tree(e, True)),
        GradientBoostingClassifier: (True, lambda e: boosting(e, True)),
        LogisticRegression: (True, lambda e: (*logistic(e), [])),
        RandomForestRegressor: (False, lambda e: forest_or_tree(e, False)),
        ExtraTreesRegressor: (False, lambda e: forest_or_tree(e, False)),
        DecisionTreeRegressor: (False, lambda e: forest_or_tree(e, False)),
        GradientBoostingRegressor: (False, lambda e: boosting(e, False)),
        LinearRegression: (False, lambda e: (*regression(e), [])),
        Ridge: (False, lambda e: (*regression(e), [])),
    }
    if MISSING is None
    else {}
)


def supported_names():
    names = sorted(c.__name__ for c in ESTIMATORS)
    return ', '.join(names) + ', and a Pipeline of a StandardScaler and one of them'


# ---------------------------------------------------------------------------------------------
# Classes, rows, answers


def classes_of(estimator):
    """The classes as JSON can carry them exactly: ints, or strings."""
    classes = estimator.classes_
    kind = classes.dtype.kind
    if kind in 'iu' or (kind == 'f' and all(float(c).is_integer() for c in classes)):
        values = [int(c) for c in classes]
        if any(abs(v) > MAX_EXACT_INT for v in values):
            raise Refused(f'class labels beyond 2^53 ({values}) would not survive JSON')
        return values
    if kind in 'UO' and all(isinstance(c, str) for c in classes):
        return [str(c) for c in classes]
    raise Refused(
        f'class labels {classes.tolist()!r} ({classes.dtype}): only integer or string labels are exported'
    )


def read_rows(path, n_features, feature_names):
    """The sample rows: (line numbers, float32 rows). A first line that is not numbers is a header."""
    lines, rows = [], []
    try:
        with open(path, newline='') as fh:
            records = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise Refused(f'cannot read {path}: {e}') from e
    seen_any = False
    for number, cells in enumerate(records, start=1):
        if all(c.strip() == '' for c in cells):
            continue
        first = not seen_any
        seen_any = True
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if first:
                check_header(path, [c.strip() for c in cells], n_features, feature_names)
                continue
            raise Refused(f'{path} line {number}: not a row of numbers: {",".join(cells)[:200]}') from None
        if len(values) != n_features:
            raise Refused(f'{path} line {number}: {len(values)} values; the model takes {n_features} features')
        with np.errstate(over='ignore'):
            row = np.array(values, dtype=np.float32)
        if not np.all(np.isfinite(row)):
            raise Refused(f'{path} line {number}: a value that is not a finite float32 number')
        lines.append(number)
        rows.append(row)
    if not rows:
        raise Refused(f'{path} has no rows')
    return lines, np.array(rows, dtype=np.float32)


def check_header(path, header, n_features, feature_names):
    if len(header) != n_features:
        raise Refused(f'{path}: the header names {len(header)} columns; the model takes {n_features} features')
    if feature_names is not None and header != feature_names:
        raise Refused(
            f'{path}: the header names the columns {header}; the model was fit on {feature_names}, in that order'
        )


def answers(estimator, rows, classifier, classes):
    """scikit-learn's own answers on the float32 rows, given as float64 (an application's numpy arrays)."""
    X = rows.astype(np.float64)
    with warnings.catch_warnings():
        # A model fit on a DataFrame warns about an array without column names: the order is checked.
        warnings.simplefilter('ignore')
        if not classifier:
            return {'prediction': floats(estimator.predict(X))}
        labels = estimator.predict(X)
        probabilities = estimator.predict_proba(X)
    as_class = str if isinstance(classes[0], str) else int
    return {'label': [as_class(v) for v in labels], 'probabilities': [floats(p) for p in probabilities]}


# ---------------------------------------------------------------------------------------------
# Probe rows


def transform_of(scaler):
    """What the estimator sees of feature f: the value after the scaler, as float32 (trees cast it)."""
    if scaler is None:
        return lambda f, x: np.float32(x), lambda f, z: np.float32(z)
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def forward(f, x):
        v = np.float64(x)
        if mean is not None:
            v = v - mean[f]
        if scale is not None:
            v = v / scale[f]
        return np.float32(v)

    def inverse(f, z):
        v = np.float64(z)
        if scale is not None:
            v = v * scale[f]
        if mean is not None:
            v = v + mean[f]
        return np.float32(v)

    return forward, inverse


def straddle(forward, inverse, f, threshold, limit=64):
    """Two consecutive float32 inputs: the largest that goes left (<= threshold) and the next one."""
    up, down = np.float32(np.inf), np.float32(-np.inf)
    x = inverse(f, threshold)
    if not np.isfinite(x):
        return None
    for _ in range(limit):
        if forward(f, x) <= threshold:
            nxt = np.nextafter(x, up)
            if forward(f, nxt) > threshold:
                return x, nxt
            x = nxt
        else:
            x = np.nextafter(x, down)
        if not np.isfinite(x):
            return None
    return None


def edge_rows(trees, scaler, bases, rng):
    forward, inverse = transform_of(scaler)
    splits = [(t.tree_, np.flatnonzero(t.tree_.children_left != -1)) for t in trees]
    splits = [(t, nodes) for t, nodes in splits if len(nodes)]
    rows = []
    for _ in range(EDGE_SPLITS if splits else 0):
        tree, nodes = splits[rng.integers(len(splits))]
        node = nodes[rng.integers(len(nodes))]
        f = int(tree.feature[node])
        pair = straddle(forward, inverse, f, float(tree.threshold[node]))
        if pair is None:
            continue
        base = bases[rng.integers(len(bases))]
        for v in pair:
            row = base.copy()
            row[f] = v
            rows.append(row)
    return rows


def scattered_rows(scaler, bases, rng):
    rows = []
    for i in range(SCATTERED_ROWS):
        base = bases[i % len(bases)].astype(np.float64)
        spread = scaler.scale_ if scaler is not None and scaler.with_std else np.maximum(1.0, np.abs(base))
        row = (base + rng.normal(scale=3.0, size=base.shape) * spread).astype(np.float32)
        if np.all(np.isfinite(row)):
            rows.append(row)
    return rows


def json_exact(rows):
    """The rows as the shortest decimals that read back to the same float32, as a server reads JSON
    (a number to float64, then to float32)."""
    as_text = [[float(str(v)) for v in row] for row in rows]
    back = np.array(as_text, dtype=np.float64).astype(np.float32)
    if not np.array_equal(back, rows):
        raise AssertionError('float32 rows do not survive the JSON round trip')
    return as_text


# ---------------------------------------------------------------------------------------------


def floats(values):
    return [float(v) for v in np.ravel(values)]


def describe(scaler, final):
    name = type(final).__name__
    return f'Pipeline(StandardScaler, {name})' if scaler is not None else name


def dump(model_path, rows_path):
    estimator, load_warnings = load(model_path)
    scaler, final = unwrap(estimator)
    if type(final) not in ESTIMATORS:
        raise Refused(
            f'{type(final).__name__} is not exported. Supported: {supported_names()}'
        )
    try:
        for step in (scaler, final):
            if step is not None:
                check_is_fitted(step)
    except NotFittedError as e:
        raise Refused(f'the estimator is not fitted: {e}') from e
    classifier, dump_final = ESTIMATORS[type(final)]
    classes = classes_of(final) if classifier else None
    score, link, label_from, trees = dump_final(final)
    n_features = int(final.n_features_in_)
    if scaler is not None and int(scaler.n_features_in_) != n_features:
        raise Refused(f'the StandardScaler takes {scaler.n_features_in_} features, the estimator {n_features}')
    names = getattr(estimator, 'feature_names_in_', None)
    feature_names = [str(n) for n in names] if names is not None else None

    lines, samples = read_rows(rows_path, n_features, feature_names) if rows_path else ([], None)
    rng = np.random.default_rng(SEED)
    if samples is not None:
        bases = list(samples)
    elif scaler is not None and scaler.with_mean:
        bases = [scaler.mean_.astype(np.float32)]
    else:
        bases = [np.zeros(n_features, dtype=np.float32)]
    probes = edge_rows(trees, scaler, bases, rng) if trees else scattered_rows(scaler, bases, rng)
    rows = np.array(([*samples] if samples is not None else []) + probes, dtype=np.float32).reshape(-1, n_features)
    return {
        'format': FORMAT,
        'sklearn': sklearn.__version__,
        'python': sys.version.split()[0],
        'estimator': describe(scaler, final),
        'warnings': load_warnings,
        'nFeatures': n_features,
        'featureNames': feature_names,
        'task': 'classifier' if classifier else 'regressor',
        'classes': classes,
        'scaler': scaler_dump(scaler),
        'score': score,
        'link': link,
        'labelFrom': label_from,
        'rows': {
            'sampleLines': lines,
            'probes': 'splitEdges' if trees else 'scattered',
            'values': json_exact(rows),
        },
        'answers': answers(estimator, rows, classifier, classes),
    }


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write('usage: dump_estimator.py MODEL OUT [ROWS_CSV]\n')
        return 2
    model_path, out_path = argv[1], argv[2]
    rows_path = argv[3] if len(argv) == 4 else None
    if MISSING is not None:
        result = {'missing': MISSING}
    else:
        try:
            result = dump(model_path, rows_path)
        except Refused as e:
            result = {'refused': str(e)}
    with open(out_path, 'w') as fh:
        json.dump(result, fh, allow_nan=False)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
