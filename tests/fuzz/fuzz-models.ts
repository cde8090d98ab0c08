import { writeConformanceModels } from '../support/conformance.js'
import {
  addConstModel,
  addModel,
  binaryExampleModel,
  constantOfShapeModel,
  identitiesModel,
  identityModel,
  reshapeTo2x2Model,
  reshapeToRequestModel,
  simpleAddSubModel,
  statefulStepModel,
  typedIdentitiesModel,
  writeVersion,
} from '../support/models.js'

/**
 * The models the fuzz suite serves: every element type, dynamic, fixed and unknown shapes, several
 * inputs and outputs, odd tensor names, answers that grow with the request, models that do not serve.
 */

const GARBAGE = 'this is not an ONNX model'

/** The model every known-good check uses, and the default model (`POST /predict`, `POST /rollback`). */
export const DEFAULT_MODEL = 'adder'

/** The only model an admin request with a valid token may change. */
export const SACRIFICIAL_MODEL = 'victim'

/** Every case here gets its own model from the ONNX node-test corpus (tests/fixtures/onnx-node). */
const CONFORMANCE = [
  'test_top_k',
  'test_string_split_basic',
  'test_string_concat_utf8',
  'test_unique_sorted_without_axis',
  'test_nonzero_example',
  'test_einsum_scalar',
  'test_ai_onnx_ml_label_encoder_tensor_mapping',
  'test_reshape_allowzero_reordered',
  'test_isnan_float16',
  'test_bitshift_right_uint64',
  'test_equal_string_broadcast',
] as const

/**
 * Models whose kernels can refuse inputs their declared signature allows: the answer is then 500
 * `inference_failed` with the runtime's message, which modelgate cannot foresee without running the
 * model. Every other model must never answer it.
 */
export const KERNEL_MAY_REFUSE: ReadonlyMap<string, string> = new Map([
  [
    'pair',
    "Add of a ['n'] and b ['n']: onnxruntime does not hold one symbolic dim to one size across inputs; Add refuses sizes that do not broadcast",
  ],
  ['simple', 'Add and Sub of two [batch, 16] inputs: different batch sizes do not broadcast'],
  ['reshape', "Reshape to [2, 2] of x ['n']: only n = 4 fits"],
  ['deep', 'Reshape to a shape the request sends: the element counts must agree, at most one -1'],
  ['ones', 'ConstantOfShape: negative dims in the request are refused by the kernel'],
  ['test_top_k', "TopK's k comes from the request and must be within the axis"],
  ['test_reshape_allowzero_reordered', 'Reshape to a shape the request sends'],
  ['test_string_concat_utf8', 'StringConcat of two inputs that must broadcast'],
])

export async function writeFuzzModels(dir: string): Promise<void> {
  await writeVersion(dir, DEFAULT_MODEL, 1, addConstModel(1))
  await writeVersion(dir, 'ident', 1, identityModel('float32', ['a', 'b']))
  await writeVersion(dir, 'anyrank', 1, identityModel('float32', undefined))
  await writeVersion(dir, 'int64', 1, identityModel('int64', ['n']))
  await writeVersion(dir, 'text', 1, identityModel('string', ['n']))
  await writeVersion(dir, 'half', 1, identityModel('float16', ['n']))
  await writeVersion(
    dir,
    'alltypes',
    1,
    typedIdentitiesModel(
      (
        [
          'float32',
          'float64',
          'float16',
          'int8',
          'int16',
          'int32',
          'int64',
          'uint8',
          'uint16',
          'uint32',
          'uint64',
          'bool',
          'string',
        ] as const
      ).map((type) => ({
        input: `in_${type}`,
        output: `out_${type}`,
        type,
      })),
    ),
  )
  await writeVersion(dir, 'pair', 1, addModel())
  await writeVersion(dir, 'simple', 1, simpleAddSubModel())
  await writeVersion(dir, 'fixed', 1, binaryExampleModel())
  await writeVersion(dir, 'stateful', 1, statefulStepModel())
  await writeVersion(dir, 'reshape', 1, reshapeTo2x2Model())
  await writeVersion(dir, 'deep', 1, reshapeToRequestModel())
  await writeVersion(dir, 'ones', 1, constantOfShapeModel())
  await writeVersion(
    dir,
    'proto',
    1,
    identitiesModel([
      ['__proto__', 'constructor'],
      ['39', 'toString'],
    ]),
  )
  await writeVersion(dir, 'broken', 1, GARBAGE)
  // A version that serves and one that was rejected: asking for the rejected one by number.
  await writeVersion(dir, 'mixed', 1, addConstModel(1))
  await writeVersion(dir, 'mixed', 2, GARBAGE)
  await writeVersion(dir, SACRIFICIAL_MODEL, 1, addConstModel(1))
  await writeVersion(dir, SACRIFICIAL_MODEL, 2, addConstModel(2))
  await writeConformanceModels(dir, CONFORMANCE)
}

/** Models that exist and never serve. */
export const UNSERVED_MODELS = ['broken'] as const
