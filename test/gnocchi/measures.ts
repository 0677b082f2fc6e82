// What ceilopoll sent against what Gnocchi holds, one granularity of the metric's archive policy at a
// time. Gnocchi keeps no raw measures: it stores, per granularity g, the mean of the measures whose
// timestamp falls in [k*g, (k+1)*g) (epoch-aligned, UTC). So the check is, for every g, that each
// bucket's point equals the mean of the samples sent in that bucket and that there is no other point.
// At g = 1 s with one sample per second at most, that is one measure per sample, at the sample's
// timestamp truncated to the second, with the sample's value.

/** One sample as ceilopoll put it on the bus (counter_* fields of the wire dict). */
export interface SentSample {
  messageId: string;
  resourceId: string;
  userId: string;
  projectId: string;
  meter: string;
  unit: string;
  volume: number;
  /** Ceilometer's naive UTC isoformat, e.g. 2026-11-26T18:22:51.771234 */
  timestamp: string;
  metadata: Record<string, unknown>;
  receivedAt: number;
}

/** Gnocchi's measures answer: [timestamp, granularity (s), value] */
export type GnocchiPoint = [string, number, number];

export interface BucketProblem {
  granularity: number;
  bucket: string;
  expected: number | null;
  got: number | null;
  samples: number;
}

/** Epoch milliseconds of a naive Ceilometer timestamp (UTC; microseconds beyond ms dropped). */
export function sampleEpochMs(ts: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?$/.exec(ts);
  if (!m) throw new Error(`not a Ceilometer timestamp (naive isoformat): ${ts}`);
  const ms = Date.parse(`${m[1]!}Z`);
  return ms + Math.floor(Number((m[2] ?? '0').padEnd(6, '0')) / 1000);
}

function bucketIso(epochS: number): string {
  return new Date(epochS * 1000).toISOString().replace('.000Z', '+00:00');
}

/** Mean and count of the samples per granularity bucket, keyed like Gnocchi's timestamps. */
export function bucketMeans(samples: SentSample[], granularity: number): Map<string, { mean: number; n: number }> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const s of samples) {
    const key = bucketIso(Math.floor(sampleEpochMs(s.timestamp) / 1000 / granularity) * granularity);
    const b = sums.get(key) ?? { sum: 0, n: 0 };
    b.sum += s.volume;
    b.n += 1;
    sums.set(key, b);
  }
  return new Map([...sums].map(([k, b]) => [k, { mean: b.sum / b.n, n: b.n }]));
}

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

/** Every bucket where Gnocchi's point is not the mean of what was sent, or is missing, or is extra. */
export function compareBuckets(samples: SentSample[], points: GnocchiPoint[], granularity: number): BucketProblem[] {
  const expected = bucketMeans(samples, granularity);
  const got = new Map(points.filter((p) => p[1] === granularity).map((p) => [p[0], p[2]]));
  const problems: BucketProblem[] = [];
  for (const [bucket, { mean, n }] of expected) {
    const g = got.get(bucket);
    if (g === undefined || !close(g, mean)) problems.push({ granularity, bucket, expected: mean, got: g ?? null, samples: n });
  }
  for (const [bucket, g] of got) {
    if (!expected.has(bucket)) problems.push({ granularity, bucket, expected: null, got: g, samples: 0 });
  }
  return problems.sort((a, b) => a.bucket.localeCompare(b.bucket));
}

export function describeProblems(resourceId: string, problems: BucketProblem[]): string {
  return problems
    .slice(0, 20)
    .map((p) => `${resourceId} g=${p.granularity}s ${p.bucket}: sent mean ${p.expected ?? 'none'} over ${p.samples} sample(s), Gnocchi ${p.got ?? 'none'}`)
    .join('\n');
}
