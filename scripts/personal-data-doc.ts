import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config';
import { renderMapMarkdown } from '../db/personal-data';

/** Writes docs/personal-data.md from the personal-data map, with the default periods. */
export const personalDataDocPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'personal-data.md');
export const renderPersonalDataDoc = () => renderMapMarkdown(loadConfig({}));

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await writeFile(personalDataDocPath, renderPersonalDataDoc());
  console.log(`wrote ${path.relative(process.cwd(), personalDataDocPath)}`);
}
