/**
 * `npm run build`: what `npm start`, the image and the benchmarks run, as plain JavaScript.
 *
 * - The TypeScript of the processes (api, worker, workflows, activities, db, lib, scripts) is
 *   compiled file by file into dist/ with esbuild, in the same layout, so every
 *   `import.meta.url`-relative path works as in the source tree. The sources import each other
 *   without extensions (as tsx and vitest allow); Node's ESM loader needs them, so the compiled
 *   relative imports get `.js` (or `/index.js`). Packages stay imports of node_modules.
 * - The SQL migrations and the seed policy text are copied beside the compiled db/ code.
 * - The workflows are bundled once into dist/workflow-bundle.js, which the compiled worker loads
 *   instead of running webpack at every start (time, and memory that stays with the process).
 *
 * dist/build-info.json holds a hash of every input; when it matches, nothing is rebuilt
 * (`npm start` runs this first). `--force` rebuilds anyway.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = path.join(root, 'dist');
const SOURCE_DIRS = ['api', 'worker', 'workflows', 'activities', 'db', 'lib', 'scripts'];
/** Besides the sources, what changes the output: the dependencies and the build itself (in scripts/). */
const OTHER_INPUTS = ['package.json', 'package-lock.json'];
// lib/failure-converter.cjs: the SDK require()s it by path next to the compiled lib/payload-codec.js.
const ASSETS = ['db/migrations', 'db/seed', 'lib/failure-converter.cjs'];
const infoFile = path.join(dist, 'build-info.json');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(path.join(root, dir), { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

async function inputHash(files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) hash.update(file).update('\0').update(await readFile(path.join(root, file))).update('\0');
  return hash.digest('hex');
}

export async function build(options: { force?: boolean; say?: (line: string) => void } = {}): Promise<'built' | 'up to date'> {
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const sources = (await Promise.all(SOURCE_DIRS.map(filesUnder))).flat();
  const hash = await inputHash([...sources, ...OTHER_INPUTS]);
  const previous = await readFile(infoFile, 'utf8').then((t) => (JSON.parse(t) as { inputHash?: string }).inputHash, () => undefined);
  if (!options.force && previous === hash) return 'up to date';

  const started = performance.now();
  say('• Build: compiling TypeScript into dist/ and bundling the workflows (once per change of the sources)…');
  // Heavy tools, loaded only when there is something to build.
  const [esbuild, { bundleWorkflowCode }] = await Promise.all([import('esbuild'), import('@temporalio/worker')]);

  await rm(dist, { recursive: true, force: true });
  const entryPoints = sources.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'scripts/build.ts');
  await esbuild.build({
    entryPoints,
    outbase: root,
    outdir: dist,
    absWorkingDir: root,
    // bundle only so that the plugin sees every import: each relative import is made external
    // again, so every output file holds exactly its own module.
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'relative-imports-with-extensions',
        setup(b) {
          b.onResolve({ filter: /^\.\.?(\/|$)/ }, (args) => {
            if (args.kind === 'entry-point') return undefined;
            const target = path.resolve(args.resolveDir, args.path);
            if (existsSync(`${target}.ts`)) return { path: `${args.path}.js`, external: true };
            if (existsSync(path.join(target, 'index.ts'))) return { path: `${args.path.replace(/\/$/, '')}/index.js`, external: true };
            return { errors: [{ text: `cannot map ${args.path} to a compiled file (expected ${args.path}.ts or ${args.path}/index.ts)` }] };
          });
        },
      },
    ],
  });
  for (const asset of ASSETS) await cp(path.join(root, asset), path.join(dist, asset), { recursive: true });

  const quiet = { info() {}, debug() {}, trace() {}, log() {}, warn: console.warn, error: console.error };
  // The failure converter of issue 12 (encodeCommonAttributes) runs inside the workflow sandbox too.
  const bundle = await bundleWorkflowCode({ workflowsPath: path.join(root, 'workflows', 'index.ts'), failureConverterPath: path.join(root, 'lib', 'failure-converter.cjs'), logger: quiet as never });
  await writeFile(path.join(dist, 'workflow-bundle.js'), bundle.code);

  // Last: an interrupted build leaves no matching hash behind, so the next start builds again.
  await mkdir(dist, { recursive: true });
  await writeFile(infoFile, `${JSON.stringify({ inputHash: hash, builtAt: new Date().toISOString() }, null, 2)}\n`);
  say(`• Build: done in ${((performance.now() - started) / 1000).toFixed(1)} s (${entryPoints.length} modules, workflow bundle ${(bundle.code.length / 1048576).toFixed(1)} MiB)`);
  return 'built';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const result = await build({ force: process.argv.includes('--force') }).catch((err: Error) => {
    process.stderr.write(`Build failed: ${err.message}\n`);
    process.exit(1);
  });
  if (result === 'up to date' && !process.argv.includes('--quiet')) process.stdout.write('• Build: dist/ is up to date with the sources\n');
}
