"""The peer: a scikit-learn model behind FastAPI, as the continuous-deployment tutorials serve it.

    PEER_MODELS=DIR uvicorn app:app --app-dir bench/peer --port 8000 --workers 1

Every DIR/<name>.joblib is loaded at startup with joblib. Routes (the same bodies and paths as
modelgate's, so one load script drives both):
    POST /predict                 PEER_DEFAULT_MODEL, else `forest`, else the first by name
    POST /models/{name}/predict
Body {"inputs": [[...features], ...]}; answer {"label": [...], "probabilities": [[...], ...]}.

One predict_proba per request, the label taken from it as sklearn's predict does
(classes_[argmax]): calling predict() and predict_proba() would walk the forest twice.
"""
import os
from typing import List

import joblib
import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

MODELS_DIR = os.environ.get('PEER_MODELS', os.path.join(os.path.dirname(__file__), 'models'))
models = {}
for file in sorted(os.listdir(MODELS_DIR)):
    if file.endswith('.joblib'):
        models[file[: -len('.joblib')]] = joblib.load(os.path.join(MODELS_DIR, file))
if not models:
    raise SystemExit(f'no *.joblib model in {MODELS_DIR}')
DEFAULT = os.environ.get('PEER_DEFAULT_MODEL', 'forest' if 'forest' in models else next(iter(models)))

app = FastAPI()


class PredictRequest(BaseModel):
    inputs: List[List[float]]


def predict_with(name: str, req: PredictRequest):
    model = models.get(name)
    if model is None:
        raise HTTPException(status_code=404, detail=f'no model {name}')
    try:
        X = np.asarray(req.inputs, dtype=np.float32)
        proba = model.predict_proba(X)
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e))
    label = model.classes_.take(np.argmax(proba, axis=1))
    return {'label': label.tolist(), 'probabilities': proba.tolist()}


@app.post('/predict')
def predict(req: PredictRequest):
    return predict_with(DEFAULT, req)


@app.post('/models/{name}/predict')
def predict_named(name: str, req: PredictRequest):
    return predict_with(name, req)


@app.get('/healthz')
def healthz():
    return {'status': 'ok', 'models': list(models)}
