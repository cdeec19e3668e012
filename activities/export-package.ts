import { strToU8, zipSync } from 'fflate';
import type { Db } from '../db/index';
import { exportSubject, type Rows, type Subject } from '../db/personal-data';

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(rows: Rows, columns: string[]): string {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
}

/**
 * Everything the back office holds about a person (Art. 15 and 20): a machine-readable package
 * with data.json and one CSV per category. The categories are those the personal-data map
 * (db/personal-data.ts) exports, so a new place that holds personal data shows up here by
 * being put on the map.
 */
export async function buildAccessExport(db: Db, subject: Subject): Promise<{ zip: Uint8Array; categories: Record<string, number> }> {
  const { data, columns } = await exportSubject(db, subject);
  const categories = Object.keys(data).sort();
  const files: Record<string, Uint8Array> = {
    'data.json': strToU8(
      JSON.stringify({ generatedAt: new Date().toISOString(), controller: 'TopCall ApS, Axeltorv 8, 4700 Næstved, Danmark', ...Object.fromEntries(categories.map((c) => [c, data[c]])) }, null, 2),
    ),
  };
  for (const category of categories) files[`${category}.csv`] = strToU8(toCsv(data[category]!, columns[category]!));
  return { zip: zipSync(files), categories: Object.fromEntries(categories.map((c) => [c, data[c]!.length])) };
}
