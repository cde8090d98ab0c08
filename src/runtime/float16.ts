/**
 * IEEE 754 half precision, which onnxruntime-node carries as Uint16Array bit patterns. Node 20
 * has no Float16Array. Conversion rounds straight from the double (round half to even), never via
 * float32, which could round twice.
 */

function roundHalfEven(x: number): number {
  const floor = Math.floor(x)
  const frac = x - floor
  if (frac > 0.5) return floor + 1
  if (frac < 0.5) return floor
  return floor % 2 === 0 ? floor : floor + 1
}

export function toFloat16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0
  const a = Math.abs(value)
  // 65520 is halfway between the largest half (65504) and the next power of two: it rounds to Inf.
  if (a >= 65520) return sign | 0x7c00
  if (a < 2 ** -14) {
    // Subnormal: value = m * 2^-24. m = 1024 rounds up into the smallest normal, which is its encoding.
    return sign | roundHalfEven(a * 2 ** 24)
  }
  let exponent = Math.floor(Math.log2(a))
  if (2 ** exponent > a) exponent -= 1
  else if (2 ** (exponent + 1) <= a) exponent += 1
  let mantissa = roundHalfEven(a * 2 ** (10 - exponent))
  if (mantissa === 2048) {
    mantissa = 1024
    exponent += 1
  }
  if (exponent > 15) return sign | 0x7c00
  return sign | ((exponent + 15) << 10) | (mantissa - 1024)
}

export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 31) return mantissa ? NaN : sign * Infinity
  return sign * (1024 + mantissa) * 2 ** (exponent - 25)
}
