/**
 * Which requests a canary answers: `percent` % of them. A sticky key (a user id, a session) is
 * hashed to one of 10 000 buckets, so the same key always lands on the same side and a larger share
 * keeps every key that was already in it; without a key, each request is drawn at random.
 */
export function inShare(sticky: string | undefined, percent: number): boolean {
  const bucket = sticky === undefined ? Math.random() * 10_000 : fnv1a(sticky) % 10_000
  return bucket < percent * 100
}

/** 32-bit FNV-1a over the string's UTF-16 code units: fast, and spreads short ids evenly. */
export function fnv1a(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
