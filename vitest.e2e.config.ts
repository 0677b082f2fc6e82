import { defineConfig } from 'vitest/config';

// `make e2e`: the real ceilometer-agent-notification (apt) against the machine's RabbitMQ.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
