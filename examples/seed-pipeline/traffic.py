"""Today's patients: each live row sent for a prediction, then every true diagnosis sent back.

    python3 traffic.py [--world old|new] [--url URL] [--model cancer]

One request per tumour (POST /models/cancer/predict, with an X-Prediction-Id of its own), then
one POST /models/cancer/feedback with every diagnosis, as a clinic would once the biopsies are
back. Prints one JSON line: the rows each version answered, and how many it got right. The
server is --url, else MODELGATE_URL (as for the modelgate command), else http://127.0.0.1:8080.
Python's standard library only, beside scikit-learn for the data.
"""
import argparse
import json
import os
import urllib.request
import uuid

from data import split


def post(url, body, headers=None):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(),
        headers={'content-type': 'application/json', **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser(description='Send the live rows, then their true labels.')
    parser.add_argument('--world', choices=['old', 'new'], default='old')
    parser.add_argument('--url', default=os.environ.get('MODELGATE_URL', 'http://127.0.0.1:8080'))
    parser.add_argument('--model', default='cancer')
    args = parser.parse_args()
    base = f'{args.url}/models/{args.model}'

    X, y = split(args.world)['live']
    run = uuid.uuid4().hex[:8]
    answered_by = {}
    feedback = []
    for i, (row, truth) in enumerate(zip(X.tolist(), y.tolist())):
        prediction_id = f'{run}-{i}'
        answer = post(f'{base}/predict', {'inputs': {'features': [row]}, 'outputs': ['label']},
                      {'x-prediction-id': prediction_id})
        tally = answered_by.setdefault(str(answer['version']), {'rows': 0, 'right': 0})
        tally['rows'] += 1
        tally['right'] += answer['outputs']['label'][0] == truth
        feedback.append({'id': prediction_id, 'label': truth})
    accepted = post(f'{base}/feedback', {'items': feedback})['accepted']
    print(json.dumps({'world': args.world, 'rows': len(y), 'answeredBy': answered_by,
                      'feedback': accepted}))


if __name__ == '__main__':
    main()
