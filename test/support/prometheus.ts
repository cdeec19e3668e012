import { readFileSync } from 'node:fs';

/** One sample of Prometheus text: `name{label="value",…} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (what /metrics and the worker exporter serve). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]!.toLowerCase() === 'nan' ? Number.NaN : m[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; undefined when none. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value;
}

/** Metric families named in a text: sample names with the histogram/summary suffixes taken off. */
export function familyNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) /.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'le']);

/**
 * The metric names a PromQL expression reads: identifiers outside label matchers, ranges and
 * strings that are not functions, aggregations or keywords.
 */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || PROMQL_WORDS.has(name!.toLowerCase()) || /^\d/.test(name!)) continue;
    names.add(name!);
  }
  return [...names];
}

/** Every PromQL expression of a Grafana dashboard JSON (panel targets, nested rows included). */
export function dashboardExpressions(dashboard: unknown): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'expr' && typeof v === 'string') exprs.push(v);
        else walk(v);
      }
    }
  };
  walk(dashboard);
  return exprs;
}

export const PROMISES_DASHBOARD = new URL('../../deploy/grafana/dashboards/promises.json', import.meta.url);

/** The metric names the provisioned Grafana dashboard reads. */
export function dashboardMetricNames(): string[] {
  const dashboard = JSON.parse(readFileSync(PROMISES_DASHBOARD, 'utf8')) as unknown;
  return [...new Set(dashboardExpressions(dashboard).flatMap(metricNamesIn))].sort();
}

/** A sample name's family: histogram series carry _bucket, _sum, _count. */
export const familyOf = (name: string, families: Set<string>) =>
  families.has(name) ? name : (['_bucket', '_sum', '_count'].map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((f) => f && families.has(f)) ?? name);
