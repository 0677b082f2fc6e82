import { defineConfig } from 'vitest/config';

// `make soak`: the built agent for CEILOPOLL_SOAK_SECONDS (default 600) against the lab and the
// machine's RabbitMQ, driven by its signals and watched through /healthz and /metrics.
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 1_800_000,
    hookTimeout: 300_000,
  },
});
