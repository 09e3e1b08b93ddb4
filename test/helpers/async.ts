/** Waiting in tests: a hang shows as a failure, not a stuck run. */
import { ApplicationFailure } from '@temporalio/common';
import { expect } from 'vitest';

/** Settles `p` within `ms` or fails the test. */
export async function within<T>(p: Promise<T>, ms = 8000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(t);
  }
}

/** The ApplicationFailure `p` ends with (anything else fails the test). */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApplicationFailure);
    return e as ApplicationFailure;
  }
  throw new Error('expected a failure');
}

/** Waits until `check` holds (e.g. a ClickHouse mutation, which runs asynchronously); the last value read. */
export async function eventually<T>(read: () => Promise<T>, check: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let v = await read();
  while (!check(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    v = await read();
  }
  return v;
}
