import { hotSwap } from './hot-swap.mjs'
import { predictExample } from './predict-example.mjs'

export const scenarios = {
  'predict-example': predictExample,
  'hot-swap': hotSwap,
}
