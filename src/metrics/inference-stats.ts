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
  /** Time inside onnxruntime, per run. */
  readonly computeInfer = { count: 0, ns: 0 }

  recordRequest(ok: boolean, ms: number): void {
    const slot = ok ? this.success : this.fail
    slot.count++
    slot.ns += Math.round(ms * 1e6)
    if (ok) {
      this.inferenceCount++
      this.lastInferenceMs = Date.now()
    }
  }

  recordRun(ms: number): void {
    this.executionCount++
    this.computeInfer.count++
    this.computeInfer.ns += Math.round(ms * 1e6)
  }

  recordQueued(requests: number, totalMs: number): void {
    this.queue.count += requests
    this.queue.ns += Math.round(totalMs * 1e6)
  }
}
