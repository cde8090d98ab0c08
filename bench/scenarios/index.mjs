import { predictExample } from './predict-example.mjs'

export const scenarios = {
  'predict-example': predictExample,
}
