/** Numbers as a person reads them on the dashboard: a few digits, a unit, a dash for "none yet". */

const NONE = '—'

/** Requests per second: one decimal below 10, whole numbers above. */
export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined) return NONE
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond).toLocaleString('en')}/s`
}

/** A share (0..1) as a percentage: one decimal, and "<0.1%" rather than a misleading 0. */
export function formatShare(share: number | null | undefined): string {
  if (share === null || share === undefined) return NONE
  if (share > 0 && share < 0.001) return '<0.1%'
  return `${(share * 100).toFixed(share === 0 || share === 1 ? 0 : 1)}%`
}

/** Milliseconds with two or three significant digits. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return NONE
  if (ms >= 100) return `${Math.round(ms).toLocaleString('en')} ms`
  return `${ms >= 10 ? ms.toFixed(1) : ms.toPrecision(2)} ms`
}

/** A plain figure (PSI, mean absolute difference): up to three decimals. */
export function formatNumber(x: number | null | undefined): string {
  if (x === null || x === undefined) return NONE
  return Number.isInteger(x) ? x.toLocaleString('en') : String(Math.round(x * 1000) / 1000)
}

/** An ISO time as `2026-12-03 10:41:07 UTC`: one zone for every reader of the same page. */
export function formatTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')
}
