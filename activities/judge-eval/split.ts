/**
 * The deterministic train / tune / test split of the labelled data sets, shared by the judge
 * benchmark (`optiinfra judge eval`) and the scripts (`npm run judge:eval`, the toxicity model's
 * training): a record's split is a hash of its data set and id, so every run agrees on it.
 */

export type Split = 'train' | 'tune' | 'test';

/** FNV-1a, 32 bit: a stable hash for the split. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The split of a record: 60 % train, 20 % tune, 20 % test by a hash of "<data set>:<id>".
 * Training uses train only; thresholds and choices use tune only; figures are reported on test.
 */
export function splitOf(dataset: string, id: string): Split {
  const b = fnv1a(`${dataset}:${id}`) % 10;
  return b < 6 ? 'train' : b < 8 ? 'tune' : 'test';
}

/**
 * HateCheck and the other evaluation-only sets are never trained on: half of their templates
 * (by hash) is the tune part, the other half the test part.
 */
export function evalOnlySplitOf(dataset: string, id: string): 'tune' | 'test' {
  return fnv1a(`${dataset}:${id}`) % 2 === 0 ? 'tune' : 'test';
}
