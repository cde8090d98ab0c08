import { burst } from './burst.mjs'
import { execution } from './execution.mjs'
import { hotSwap } from './hot-swap.mjs'
import { predictExample } from './predict-example.mjs'
import { promotionStall } from './promotion-stall.mjs'
import { protocols } from './protocols.mjs'
import { replicas } from './replicas.mjs'
import { rolloutCost } from './rollout-cost.mjs'
import { throughput } from './throughput.mjs'
import { workers } from './workers.mjs'

export const scenarios = {
  'predict-example': predictExample,
  'hot-swap': hotSwap,
  throughput,
  burst,
  'promotion-stall': promotionStall,
  execution,
  'rollout-cost': rolloutCost,
  replicas,
  protocols,
  workers,
}
