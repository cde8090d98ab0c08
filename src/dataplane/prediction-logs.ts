import { PredictionLog } from './prediction-log.js'

/** Each model's remembered predictions, made on first use. */
export class PredictionLogs {
  readonly #logs = new Map<string, PredictionLog>()

  /** The model's log, sized to `capacity` (model.json `feedback.remember`, which may change). */
  of(model: string, capacity: number): PredictionLog {
    let log = this.#logs.get(model)
    if (!log) {
      log = new PredictionLog(capacity)
      this.#logs.set(model, log)
    } else if (log.capacity !== capacity) log.resize(capacity)
    return log
  }
}
