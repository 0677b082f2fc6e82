// The ConfigErrors a configuration load throws, as a list, for tests that check each message.

import { ConfigErrors, type ConfigError } from '../../src/config/errors.js';

const take = (err: unknown): ConfigError[] => {
  if (err instanceof ConfigErrors) return [...err.errors];
  throw err;
};

/** The errors `fn` throws; fails when it throws none or something else. */
export function errorsOf(fn: () => unknown): ConfigError[] {
  try {
    fn();
  } catch (err) {
    return take(err);
  }
  throw new Error('expected ConfigErrors');
}

/** The errors `p` rejects with; fails when it resolves or rejects with something else. */
export async function asyncErrorsOf(p: Promise<unknown>): Promise<ConfigError[]> {
  try {
    await p;
  } catch (err) {
    return take(err);
  }
  throw new Error('expected ConfigErrors');
}
