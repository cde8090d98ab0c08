// Rounds in which every server of a scenario is loaded in turn (forward, then backward), so that
// the machine's speed drifting during the run lands on every server alike; each ratio is then a
// round's run over the same round's baseline run.

/**
 * @param {{servers: T[], name: (s: T) => string, connections: number[], rounds: number,
 *   measure: (s: T, connections: number) => Promise<object>}} o  `measure`: one load run
 * @returns {Promise<Record<number, Record<string, object[]>>>} runs[connections][name]: one result
 *   per round
 * @template T
 */
export async function interleavedRounds({ servers, name, connections, rounds, measure }) {
  const runs = Object.fromEntries(
    connections.map((c) => [c, Object.fromEntries(servers.map((s) => [name(s), []]))]),
  )
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [...servers].reverse() : servers
    for (const s of order) {
      for (const c of connections) runs[c][name(s)].push(await measure(s, c))
    }
  }
  return runs
}
