"""The walkthrough's data: scikit-learn's breast cancer set, split the same way by every script.

569 tumours, 30 measurements each (radius, texture, ...: mean, error and worst), diagnosed
malignant (0) or benign (1). It ships with scikit-learn: nothing is downloaded. One fixed split:

    train  284 rows  what train.py fits on
    test   114 rows  held out: the accuracy train.py prints, and the gate's smoke cases
    live   171 rows  today's patients, sent by traffic.py, their diagnoses sent back as feedback

The `new` world is the same tumours measured by a new scanner whose calibration reports every
size (radius, perimeter, area) 30% larger: what the drift alarm notices.

    python3 data.py [--world old|new] [--min-accuracy 0.8]

writes test.csv (the test rows' features, for `modelgate import sklearn --smoke-from`) and
models/cancer/smoke.json (the test rows with their true diagnoses: the accuracy floor every
version must clear in the gate).
"""
import argparse
import csv
import json
import os

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

# The split never changes with a model's --seed: every version is judged on the same rows.
SPLIT_SEED = 0
SCANNER_GAIN = 1.3
MODEL_DIR = os.path.join('models', 'cancer')


def split(world='old'):
    """{'train': (X, y), 'test': (X, y), 'live': (X, y)} in `world`."""
    data = load_breast_cancer()
    X, y = data.data, data.target
    if world == 'new':
        X = rescan(X, data.feature_names)
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, test_size=0.5, random_state=SPLIT_SEED, stratify=y)
    X_test, X_live, y_test, y_live = train_test_split(
        X_rest, y_rest, test_size=0.6, random_state=SPLIT_SEED, stratify=y_rest)
    return {'train': (X_train, y_train), 'test': (X_test, y_test), 'live': (X_live, y_live)}


def rescan(X, names):
    """The same tumours through the new scanner: every size feature SCANNER_GAIN times larger."""
    sizes = [i for i, name in enumerate(names)
             if any(word in name for word in ('radius', 'perimeter', 'area'))]
    X = X.copy()
    X[:, sizes] *= SCANNER_GAIN
    return X


def write_test_set(world, min_accuracy):
    X, y = split(world)['test']
    with open('test.csv', 'w', newline='') as f:
        out = csv.writer(f)
        out.writerow(load_breast_cancer().feature_names)
        out.writerows(X.tolist())
    smoke = {
        'minAccuracy': min_accuracy,
        'cases': [{
            'name': f'held-out tumours ({world} scanner)',
            'inputs': {'features': X.tolist()},
            'label': {'output': 'label', 'value': y.tolist()},
        }],
    }
    path = os.path.join(MODEL_DIR, 'smoke.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(smoke, f)
    # One rename: a server watching the folder never reads half of it.
    os.replace(path + '.tmp', path)
    print(f'wrote test.csv and {path}: {len(y)} held-out rows ({world} scanner), '
          f'minAccuracy {min_accuracy}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='Write the held-out test set: test.csv and smoke.json.')
    parser.add_argument('--world', choices=['old', 'new'], default='old')
    parser.add_argument('--min-accuracy', type=float, default=0.8)
    args = parser.parse_args()
    write_test_set(args.world, args.min_accuracy)
