import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // native addons can crash worker threads on exit: use processes
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
