import type { Dim, Signature, TensorSpec } from '../../runtime/signature.js'
import type { Contract, ContractTensor } from './gate-types.js'

/**
 * What would break a client that works with the contract: an input or output removed or renamed, a
 * new input (clients do not send it), a changed element type or rank, or an input's fixed dim that
 * no longer takes what it took. New outputs and loosened dims break nobody.
 */
export function signatureChanges(contract: Contract, candidate: Signature): string[] {
  const changes: string[] = []
  const inputs = byName(candidate.inputs)
  for (const want of contract.inputs) {
    const got = inputs.get(want.name)
    if (!got) changes.push(`input '${want.name}' is gone`)
    else compareTensor('input', want, got, changes)
  }
  const known = new Set(contract.inputs.map((i) => i.name))
  for (const got of candidate.inputs)
    if (!known.has(got.name)) changes.push(`input '${got.name}' is new (clients do not send it)`)

  const outputs = byName(candidate.outputs)
  for (const want of contract.outputs) {
    const got = outputs.get(want.name)
    if (!got) changes.push(`output '${want.name}' is gone`)
    else compareTensor('output', want, got, changes)
  }
  return changes
}

function byName<T extends { readonly name: string }>(specs: readonly T[]): Map<string, T> {
  return new Map(specs.map((s) => [s.name, s]))
}

function compareTensor(
  kind: 'input' | 'output',
  want: ContractTensor,
  got: TensorSpec,
  changes: string[],
): void {
  const name = `${kind} '${want.name}'`
  if (want.type !== got.type) changes.push(`${name} changed type ${want.type} -> ${got.type}`)
  // A contract without a shape (or of unknown rank) constrains names and types only; an input
  // that loses its shape takes anything, which breaks nobody; an output that does might.
  if (want.shape === null || want.shape === undefined) return
  if (got.shape === null) {
    if (kind === 'output') changes.push(`${name} changed rank ${want.shape.length} -> unknown`)
    return
  }
  if (want.shape.length !== got.shape.length) {
    changes.push(`${name} changed rank ${want.shape.length} -> ${got.shape.length}`)
    return
  }
  want.shape.forEach((w, i) => {
    const g = got.shape![i]!
    // An input dim must still take every size it took; an output dim must still be what clients read.
    const breaks =
      kind === 'input'
        ? typeof g === 'number' && g !== w
        : typeof w === 'number' && typeof g === 'number' && g !== w
    if (breaks) changes.push(`${name} dim ${i} changed ${show(w)} -> ${show(g)}`)
  })
}

function show(d: Dim): string {
  return d === null ? '?' : String(d)
}
