import { z } from 'zod'

/**
 * What dump_estimator.py writes: a scikit-learn estimator as numbers, and scikit-learn's answers on
 * check rows. The contract between the Python half of `modelgate import sklearn` and this one;
 * checked here because the interpreter (MODELGATE_PYTHON) may run another copy of the script.
 *
 * An answer is made in three steps, each as scikit-learn makes it:
 * - `scaler`: a StandardScaler in front, `(x - mean) / scale` in float64 (either may be absent);
 * - `score`: raw scores `[batch, nScores]`, from trees (summed in order, then divided by
 *   `divideBy`, then `add` added: the boosting's initial raw score) or a linear function;
 * - `link`: how scores become the answer. `identity`: a regressor's prediction (one score);
 *   `probabilities`: the scores are the class probabilities (forests, trees); `logistic`: one score
 *   d, probabilities [1 - expit(d), expit(d)]; `softmax`: the softmax of the scores; `ovr`: each
 *   score's expit, over their sum. `labelFrom` says whether the label is the argmax of the
 *   probabilities or of the scores (a single score d: class 1 when d > 0).
 */

const numbers = z.array(z.number())
const indices = z.array(z.number().int())

const tree = z
  .object({
    /** sklearn's tree_ arrays: a leaf has left = right = -1; a row goes left when x <= threshold. */
    left: indices,
    right: indices,
    feature: indices,
    threshold: numbers,
    /** Per node, what a leaf adds to each of `targets` (only leaves' are used). */
    values: z.array(numbers),
    targets: z.array(z.number().int().min(0)).min(1),
  })
  .strict()

const score = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('trees'),
      nScores: z.number().int().min(1),
      trees: z.array(tree).min(1),
      divideBy: z.number().int().min(1),
      add: numbers.nullable(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('linear'),
      /** One row of coefficients per score. */
      coef: z.array(numbers).min(1),
      intercept: numbers,
    })
    .strict(),
])

const classifierAnswers = z
  .object({
    label: z.array(z.union([z.number().int(), z.string()])),
    probabilities: z.array(numbers),
  })
  .strict()
const regressorAnswers = z.object({ prediction: numbers }).strict()

export const estimatorDumpSchema = z
  .object({
    format: z.literal(1),
    sklearn: z.string(),
    python: z.string(),
    /** For people: `RandomForestClassifier`, `Pipeline(StandardScaler, Ridge)`. */
    estimator: z.string(),
    /** What scikit-learn warned while unpickling (a pickle of another version). */
    warnings: z.array(z.string()),
    nFeatures: z.number().int().min(1),
    featureNames: z.array(z.string()).nullable(),
    task: z.enum(['classifier', 'regressor']),
    classes: z.union([z.array(z.number().int()).min(2), z.array(z.string()).min(2)]).nullable(),
    scaler: z.object({ mean: numbers.nullable(), scale: numbers.nullable() }).strict().nullable(),
    score,
    link: z.enum(['identity', 'probabilities', 'logistic', 'softmax', 'ovr']),
    labelFrom: z.enum(['scores', 'probabilities']),
    rows: z
      .object({
        /** Line numbers in the --smoke-from file of the first rows; the rest are probes. */
        sampleLines: indices,
        probes: z.enum(['splitEdges', 'scattered']),
        /** float32 values, as the shortest decimals that read back to them. */
        values: z.array(numbers),
      })
      .strict(),
    answers: z.union([classifierAnswers, regressorAnswers]),
  })
  .strict()

export type EstimatorDump = z.infer<typeof estimatorDumpSchema>
export type TreeDump = z.infer<typeof tree>
export type ScoreDump = EstimatorDump['score']
