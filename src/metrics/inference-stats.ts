/** Counters of one loaded version, for the V2 statistics extension (Triton's field names). */
export class InferenceStats {
  /** Requests answered (successes). */
  inferenceCount = 0
  /** Runs of the model: one per batch. */
  executionCount = 0
  lastInferenceMs = 0
  readonly success = { count: 0, ns: 0 }
  readonly fail = { count: 0, ns: 0 }
  /** Time requests waited in the batching queue. */
  readonly queue = { count: 0, ns: 0 }
  /** Decoding a request's inputs into tensors. */
  readonly computeInput = { count: 0, ns: 0 }
  /** Time inside onnxruntime, per run. */
  readonly computeInfer = { count: 0, ns: 0 }
  /** Checking a run's outputs for a request. */
  readonly computeOutput = { count: 0, ns: 0 }
  /** Runs by batch size (rows): Triton's batch_stats. */
  readonly batches = new Map<number, { count: number; ns: number }>()

  /** `inferences`: the request's batch size (rows), which is what inference_count counts. */
  recordRequest(ok: boolean, ms: number, inferences = 1): void {
    const slot = ok ? this.success : this.fail
    slot.count++
    slot.ns += Math.round(ms * 1e6)
    if (ok) {
      this.inferenceCount += inferences
      this.lastInferenceMs = Date.now()
    }
  }

  recordInput(ms: number): void {
    this.computeInput.count++
    this.computeInput.ns += Math.round(ms * 1e6)
  }

  recordOutput(ms: number): void {
    this.computeOutput.count++
    this.computeOutput.ns += Math.round(ms * 1e6)
  }

  recordRun(ms: number, rows: number): void {
    const ns = Math.round(ms * 1e6)
    this.executionCount++
    this.computeInfer.count++
    this.computeInfer.ns += ns
    const b = this.batches.get(rows) ?? { count: 0, ns: 0 }
    b.count++
    b.ns += ns
    this.batches.set(rows, b)
  }

  recordQueued(requests: number, totalMs: number): void {
    this.queue.count += requests
    this.queue.ns += Math.round(totalMs * 1e6)
  }
}
