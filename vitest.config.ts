import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // native addons can crash worker threads on exit: use processes
    pool: 'forks',
    // at least two test files at a time, also on a 2-core machine (vitest's default there is
    // cores − 1 = 1): many files spend most of their time waiting on child processes (the CLI,
    // redis-server, i-PI, Python), and the core's rayon pool is sized to the machine anyway
    maxWorkers: Math.max(2, availableParallelism() - 1),
    minWorkers: 1,
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
