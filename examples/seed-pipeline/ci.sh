#!/bin/sh
# The pipeline's steps after training, the same for a person and for CI:
#
#   ./ci.sh MODEL.pkl           import the scikit-learn model to ONNX, and gate it offline
#   ./ci.sh MODEL.pkl --ship    then ship it to the server, and wait for the server's verdict
#
# Exit status: 0 passed (with --ship: and serving); otherwise the failing step's own, and it says
# why: import 1 (not exported: the export and scikit-learn disagree, an estimator it does not
# support), validate 1 (the gate refuses it), ship 1 (rejected or rolled back), 3 (no server), 4
# (timed out); 2 a usage error.
#
# From the environment: MODELS, the server's models directory (models); MODEL, the model (cancer);
# STATE_DIR, the server's --state-dir when it is not MODELS/.modelgate; MODELGATE_URL, the server
# (http://127.0.0.1:8080). test.csv holds the held-out rows (python3 data.py writes it).
set -eu

usage='usage: ./ci.sh MODEL.pkl [--ship]'
ship=${2:-}
case $#:$ship in 1: | 2:--ship) ;; *) echo "$usage" >&2 && exit 2 ;; esac
pkl=$1
models=${MODELS:-models}
model=${MODEL:-cancer}
onnx=${pkl%.pkl}.onnx
smoke=${pkl%.pkl}.smoke.json

# The pickle as an ONNX model, read by the python3 that trained it. The import runs the export
# and scikit-learn on the test rows and on rows either side of the trees' split points, and
# writes nothing unless they agree. sklearn's answers on the test rows go to MODEL.smoke.json,
# shipped as the version's own smoke.json: the server's gate checks them too.
export MODELGATE_PYTHON="${MODELGATE_PYTHON:-$(command -v python3)}"
npx modelgate import sklearn "$pkl" --out "$onnx" --smoke-from test.csv --smoke-out "$smoke" --force

# The gate, offline: held to the version the server serves today (its state.json says which) and
# to model.json's signature, and scored on smoke.json's held-out rows against minAccuracy.
npx modelgate validate "$onnx" --model-dir "$models/$model" ${STATE_DIR:+--state-dir "$STATE_DIR"}

[ "$ship" = --ship ] || exit 0
# Into the models directory the safe way; exits 0 once the version serves.
npx modelgate ship "$onnx" --models "$models" --model "$model" --smoke "$smoke" --wait
