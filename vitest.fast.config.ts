import { defineConfig } from 'vitest/config';

/**
 * The fast tier (`npm run test:fast`): workflow logic on a real dev server with typed fake
 * activities, in seconds. `npm test` runs these files too, beside the end-to-end suite.
 */
export default defineConfig({
  test: {
    include: ['test/fast/**/*.test.ts'],
    globalSetup: ['test/fast/global-setup.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 180_000,
  },
});
