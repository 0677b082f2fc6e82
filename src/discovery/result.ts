// The outcome of reading one domain's data: a value, or one sentence an operator can act on.
// Discovery rejects a single domain with a reason instead of throwing, so one odd guest never
// stops the others from being polled (Ceilometer aborts the whole discovery cycle there, §2.2 step 5).

export type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
