"""Train a random forest on the breast cancer set and save it with joblib, as the article does.

    python3 train.py --seed 1 --out model_v1.pkl

prints its accuracy on the held-out test rows. The options make the walkthrough's versions:

    --seed N              the forest's random state (the split never changes: see data.py)
    --trees N             trees in the forest (100)
    --shuffle-labels      a bug: the diagnoses shuffled before training (a model that guesses)
    --malignant-every N   a bad extract: only every Nth malignant tumour reached the training set
    --world new           trained on the new scanner's measurements (after the drift alarm)
"""
import argparse

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

from data import split

MALIGNANT = 0


def training_rows(args):
    X, y = split(args.world)['train']
    if args.shuffle_labels:
        y = np.random.default_rng(args.seed).permutation(y)
    if args.malignant_every > 1:
        malignant = np.flatnonzero(y == MALIGNANT)
        keep = np.sort(np.concatenate([np.flatnonzero(y != MALIGNANT),
                                       malignant[::args.malignant_every]]))
        X, y = X[keep], y[keep]
    return X, y


def main():
    parser = argparse.ArgumentParser(description='Train and save a RandomForestClassifier.')
    parser.add_argument('--out', required=True, help='where joblib.dump writes the model')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--trees', type=int, default=100)
    parser.add_argument('--shuffle-labels', action='store_true')
    parser.add_argument('--malignant-every', type=int, default=1, metavar='N')
    parser.add_argument('--world', choices=['old', 'new'], default='old')
    args = parser.parse_args()

    X, y = training_rows(args)
    model = RandomForestClassifier(n_estimators=args.trees, random_state=args.seed)
    model.fit(X, y)
    joblib.dump(model, args.out)
    X_test, y_test = split(args.world)['test']
    print(f'{args.out}: {len(y)} training rows ({np.sum(y == MALIGNANT)} malignant), '
          f'{args.world} scanner, held-out accuracy {model.score(X_test, y_test):.3f}')


if __name__ == '__main__':
    main()
