import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

// `make e2e-gnocchi`: ceilopoll -> RabbitMQ -> the real ceilometer-agent-notification -> a real Gnocchi.
// The root vitest.config.ts leaves test/gnocchi out.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/gnocchi/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
