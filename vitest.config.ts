import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the real ceilometer-agent-notification: `make e2e` (vitest.e2e.config.ts)
    exclude: ['test/e2e/**', 'test/soak/**', 'test/gnocchi/**', 'test/chaos/**', 'node_modules/**'],
    // Integration tests share one libvirtd (one of them kills and restarts it): run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
