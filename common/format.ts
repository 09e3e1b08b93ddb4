/**
 * Number formatting shared by findings, explanations, reports and the CLI. No locale APIs, so a
 * text is the same on every machine (and in the workflow sandbox). Pure, workflow-safe.
 */

/** The least and the greatest of many numbers (spreading them into Math.min would overflow the stack). */
export const least = (xs: readonly number[]): number => xs.reduce((a, v) => Math.min(a, v), Infinity);
export const most = (xs: readonly number[]): number => xs.reduce((a, v) => Math.max(a, v), -Infinity);

/** x rounded to `digits` decimals (non-finite values unchanged). */
export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A fraction as percentage points, rounded: 0.8734 → 87.3. */
export function percentPoints(fraction: number, digits = 1): number {
  return round(fraction * 100, digits);
}

/** A fraction as text: 0.8734 → "87.3 %". */
export function percentText(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** x with exactly `digits` decimals: 2.5 → "2.50" (non-finite values as they are). */
export function fixed(x: number, digits = 0): string {
  return Number.isFinite(x) ? round(x, digits).toFixed(digits) : String(x);
}

/** Dollars with thousands separators, cents only when there are any: "$624", "$37.40", "$28,119.60", "-$5". */
export function formatUsd(x: number): string {
  const r = Math.round(x * 100) / 100 + 0; // + 0 turns -0 into 0
  const sign = r < 0 ? '-' : '';
  const abs = Math.abs(r);
  const whole = Math.floor(abs);
  const cents = Math.round((abs - whole) * 100);
  const grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}$${grouped}${cents === 0 ? '' : `.${String(cents).padStart(2, '0')}`}`;
}
