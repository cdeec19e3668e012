import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real stack per run (Temporal dev server, Postgres database, SMTP sink), shared by
    // every test file; each file runs in its own process and uses its own task queue.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 600_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
