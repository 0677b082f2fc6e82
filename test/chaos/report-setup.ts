// vitest globalSetup for `make chaos`: starts the report empty, and after the run writes
// test/chaos/last-report.md and prints it.

import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { RESULTS_FILE, readRows, renderReport } from './report.js';

const REPORT_FILE = fileURLToPath(new URL('./last-report.md', import.meta.url));

export default function setup(): () => void {
  const startedAt = new Date();
  // CEILOPOLL_CHAOS_REPORT_APPEND=1: add this run's rows to the previous run's (a run split in parts)
  if (process.env.CEILOPOLL_CHAOS_REPORT_APPEND !== '1') rmSync(RESULTS_FILE, { force: true });
  return () => {
    const rows = readRows();
    if (rows.length === 0) return; // nothing ran (a filter matched no scenario): keep the last report
    const text = renderReport(rows, { startedAt, finishedAt: new Date() });
    writeFileSync(REPORT_FILE, text);
    process.stdout.write(`\n${text}\nwritten to ${REPORT_FILE}\n`);
  };
}
