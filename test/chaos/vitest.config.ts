import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// `make chaos`: fault injection (issue 6). The root vitest.config.ts also matches test/chaos/*.test.ts;
// the env below is what lets the scenarios run, so a plain `npx vitest run` skips them.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/chaos/**/*.test.ts'],
    env: { CEILOPOLL_CHAOS: '1' },
    // the scenarios share one libvirtd, one machine and the report file: one file at a time
    fileParallelism: false,
    // the fuzzers measure heap growth: let them collect garbage before measuring
    execArgv: ['--expose-gc'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    globalSetup: ['test/chaos/report-setup.ts'],
  },
});
