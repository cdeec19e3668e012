import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits is a lost error (and, in a workflow, a lost step).
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    // Workflows must stay deterministic: the SDK, types and pure helpers only.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'crypto', 'os', 'child_process', 'http', 'net'], message: 'Workflows are deterministic: no Node APIs.' },
            { group: ['**/db', '**/db/*', '**/api', '**/api/*', '**/lib/*', 'postgres', 'nodemailer', 'pino', 'luxon'], message: 'Workflows may not touch I/O; call an activity.' },
            { group: ['**/activities', '**/activities/*'], message: 'Import activity types only: import type { Activities } from "../activities".', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
