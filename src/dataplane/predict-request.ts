import { z } from 'zod'

/**
 * The simple JSON API's request body. Tensors are checked by the codec against the version's
 * signature, not here: it knows the types and gives messages that name the input and element.
 */
export const predictRequestSchema = z
  .object({
    inputs: z.unknown().refine((v) => v !== undefined, { message: 'is required' }),
    outputs: z
      .array(z.string())
      .min(1, { message: 'must name at least one output (omit it for all)' })
      .optional(),
    output_format: z.enum(['nested', 'typed']).optional(),
  })
  .strict()

export type PredictRequest = z.infer<typeof predictRequestSchema>
