import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // End-to-end suites start real processes on loopback; two cores do not
    // take more than a couple of them at once.
    maxWorkers: 2,
  },
});
