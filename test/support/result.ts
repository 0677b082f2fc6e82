// Unwrapping a discovery Result in tests, with the other side's content in the failure message.

import type { Result } from '../../src/discovery/result.js';

export function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected a value, got the reason: ${r.reason}`);
  return r.value;
}

export function reason<T>(r: Result<T>): string {
  if (r.ok) throw new Error(`expected a reason, got the value: ${JSON.stringify(r.value)}`);
  return r.reason;
}
