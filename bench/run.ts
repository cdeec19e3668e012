/** `npm run bench [-- name…]`: runs the named benchmarks (default: all), one after another. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const all = ['retention', 'policy-notices', 'intake', 'transfer'];
const chosen = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of chosen.length ? chosen : all) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark ${name}; have: ${all.join(', ')}`);
    process.exit(2);
  }
  const result = spawnSync(process.execPath, ['--import', 'tsx', `bench/${name}.ts`], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: 'inherit',
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
