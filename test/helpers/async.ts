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
