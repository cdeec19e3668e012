// The compose stack and the image are the production-shaped way to run the
// back office. Docker cannot run on the development machine, so this test
// reads docker-compose.yml, the Dockerfile and .dockerignore as text and
// holds them to the outside contract (docs/contract.md) and the policy defaults.
import { readFileSync, existsSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import YAML from 'yaml';
import { ConfigError, loadConfig } from '../lib/config';
import { createMetrics, PROMISE_GAUGES } from '../api/metrics';
import { createLogger } from '../lib/log';
import { dashboardExpressions, dashboardMetricNames, PROMISES_DASHBOARD } from './support/prometheus';

const composeUrl = new URL('../docker-compose.yml', import.meta.url);
const dockerfileUrl = new URL('../Dockerfile', import.meta.url);
const dockerignoreUrl = new URL('../.dockerignore', import.meta.url);
const packageJsonUrl = new URL('../package.json', import.meta.url);

/**
 * Every configuration variable of the contract. `compose` is what the stack
 * must pass: a fixed value, a pattern, or `policyDefault` for the periods of
 * the policy, which stay overridable (`${VAR:-default}`) so a demo can run on
 * a compressed clock.
 */
const CONFIG: ReadonlyArray<{
  name: string;
  compose?: string | RegExp;
  policyDefault?: string;
}> = [
  { name: 'PORT', compose: '3000' },
  {
    name: 'DATABASE_URL',
    compose: /^postgres:\/\/postgres:\$\{POSTGRES_PASSWORD:-[^}]+\}@postgres:5432\/privacy_backoffice$/,
  },
  { name: 'TEMPORAL_ADDRESS', compose: 'temporal:7233' },
  { name: 'TEMPORAL_NAMESPACE', compose: '${TEMPORAL_NAMESPACE:-default}' },
  { name: 'TEMPORAL_TASK_QUEUE', compose: '${TEMPORAL_TASK_QUEUE:-privacy-backoffice}' },
  // issue 12: passed through, off by default (the compose Temporal serves plaintext)
  { name: 'TEMPORAL_TLS', compose: '${TEMPORAL_TLS:-}' },
  { name: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', compose: '${TEMPORAL_TLS_SERVER_CA_CERT_PATH:-}' },
  { name: 'TEMPORAL_TLS_CLIENT_CERT_PATH', compose: '${TEMPORAL_TLS_CLIENT_CERT_PATH:-}' },
  { name: 'TEMPORAL_TLS_CLIENT_KEY_PATH', compose: '${TEMPORAL_TLS_CLIENT_KEY_PATH:-}' },
  { name: 'TEMPORAL_TLS_SERVER_NAME', compose: '${TEMPORAL_TLS_SERVER_NAME:-}' },
  // a secret: only ever passed through from the user's environment
  { name: 'TEMPORAL_API_KEY', compose: '${TEMPORAL_API_KEY:-}' },
  // issue 12: the payload codec's key ring, a secret passed through (empty: the development key)
  { name: 'PAYLOAD_KEYS', compose: '${PAYLOAD_KEYS:-}' },
  // issue 12: the master keys of the person data keys, a secret passed through (empty: the development key)
  { name: 'DATA_KEYS', compose: '${DATA_KEYS:-}' },
  { name: 'TEMPORAL_UI_ORIGIN', compose: '${TEMPORAL_UI_ORIGIN:-http://localhost:8233}' },
  // a development stack: the image's NODE_ENV=production would refuse it (issue 12)
  { name: 'NODE_ENV', compose: 'development' },
  { name: 'SMTP_URL', compose: 'smtp://mailpit:1025' },
  { name: 'MAIL_FROM', compose: '${MAIL_FROM:-TopCall <kundeservice@topcall.dk>}' },
  { name: 'STAFF_EMAIL', compose: '${STAFF_EMAIL:-privacy@topcall.dk}' },
  { name: 'PUBLIC_URL', compose: /^(\$\{PUBLIC_URL:-)?http:\/\/localhost:3000\}?$/ },
  { name: 'DATA_DIR', compose: '/data' },
  // a secret: only ever passed through from the user's environment
  { name: 'STAFF_BOOTSTRAP_TOKEN', compose: '${STAFF_BOOTSTRAP_TOKEN:-}' },
  { name: 'RECORDING_RETENTION', policyDefault: 'P3M' },
  { name: 'RETENTION_SWEEP_INTERVAL', policyDefault: 'PT1H' },
  { name: 'DISPUTE_REVIEW_INTERVAL', policyDefault: 'P30D' },
  { name: 'REQUEST_SLA', policyDefault: 'P7D' },
  { name: 'REQUEST_REMINDERS', policyDefault: 'P3D,P5D' },
  { name: 'REQUEST_ESCALATION', policyDefault: 'P6D' },
  { name: 'POLICY_NOTICE_PERIOD', policyDefault: 'P30D' },
  { name: 'TRANSFER_NOTICE_PERIOD', policyDefault: 'P30D' },
];

/** Temporal search attributes the workflows set (contract: Operations). */
const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: string }> = [
  { name: 'CustomerId', type: 'Keyword' },
  { name: 'ClientId', type: 'Keyword' },
  { name: 'RequestType', type: 'Keyword' },
  { name: 'RequestStatus', type: 'Keyword' },
  { name: 'SlaDueAt', type: 'Datetime' },
  { name: 'SlaBreached', type: 'Bool' },
  { name: 'DisputeStatus', type: 'Keyword' },
  { name: 'PolicyVersion', type: 'Keyword' },
  { name: 'TransferStatus', type: 'Keyword' },
];

const SERVICES = ['postgres', 'temporal', 'temporal-setup', 'temporal-ui', 'mailpit', 'api', 'worker', 'prometheus', 'grafana'] as const;
const APP_SERVICES = ['api', 'worker'] as const;

/** Published ports: host port → the service and container port behind it. */
const PUBLISHED: ReadonlyArray<{ host: number; service: string; container: number; what: string }> = [
  { host: 3000, service: 'api', container: 3000, what: 'HTTP API' },
  { host: 7233, service: 'temporal', container: 7233, what: 'Temporal frontend' },
  { host: 8233, service: 'temporal-ui', container: 8080, what: 'Temporal Web UI' },
  { host: 1025, service: 'mailpit', container: 1025, what: 'SMTP' },
  { host: 1080, service: 'mailpit', container: 8025, what: 'sent-mail web view' },
  { host: 9090, service: 'prometheus', container: 9090, what: 'Prometheus' },
  { host: 3001, service: 'grafana', container: 3000, what: 'Grafana' },
];

/** Source directories `npm run build` compiles in the image's build stage (scripts/build.ts). */
const SOURCE_DIRS = ['api', 'worker', 'workflows', 'activities', 'db', 'lib', 'scripts'] as const;

// ---------------------------------------------------------------------------

type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, unknown> | string[];
  ports?: Array<string | number | { target: number; published?: string | number }>;
  volumes?: Array<string | { type?: string; source?: string; target: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
};
type Compose = {
  version?: unknown;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};

const compose = YAML.parse(readFileSync(composeUrl, 'utf8'), { merge: true }) as Compose;
const dockerfile = existsSync(dockerfileUrl) ? readFileSync(dockerfileUrl, 'utf8') : '';
const dockerignore = existsSync(dockerignoreUrl) ? readFileSync(dockerignoreUrl, 'utf8') : '';
const packageJson = JSON.parse(readFileSync(packageJsonUrl, 'utf8')) as { scripts: Record<string, string> };

function service(name: string): Service {
  const s = compose.services?.[name];
  if (!s) throw new Error(`service ${name} is missing from docker-compose.yml`);
  return s;
}

function env(name: string): Record<string, string> {
  const e = service(name).environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(
      e.map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v == null ? '' : String(v)]));
}

function commandText(s: Service): string {
  const c = s.command ?? '';
  return Array.isArray(c) ? c.join(' ') : c;
}

/** [host, container] pairs from short ("8233:8080", "127.0.0.1:1080:8025/tcp") or long syntax. */
function ports(name: string): Array<[number, number]> {
  return (service(name).ports ?? []).map((p) => {
    if (typeof p === 'object') return [Number(p.published), Number(p.target)];
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    const container = Number(parts.at(-1));
    const host = parts.length > 1 ? Number(parts.at(-2)) : container;
    return [host, container];
  });
}

/** Mounts as {source, target}; source undefined for anonymous volumes. */
function mounts(name: string): Array<{ source?: string; target: string }> {
  return (service(name).volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source, target: v.target };
    const [a, b] = v.split(':');
    return b === undefined ? { target: a! } : { source: a, target: b };
  });
}

function dependsOn(name: string): Record<string, string | undefined> {
  const d = service(name).depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((k) => [k, undefined]));
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v?.condition]));
}

const isNamedVolume = (source: string | undefined): source is string =>
  !!source && !source.startsWith('.') && !source.startsWith('/') && !source.startsWith('~') && !source.startsWith('$');

// ---------------------------------------------------------------------------

describe('docker-compose.yml: the full stack', () => {
  it('is a Compose-spec file (no obsolete top-level version key)', () => {
    expect(compose.version).toBeUndefined();
    expect(typeof compose.services).toBe('object');
  });

  it.each(SERVICES)('defines the %s service', (name) => {
    expect(compose.services).toHaveProperty([name]);
    const s = service(name);
    expect(s.image ?? s.build, `${name} needs an image or a build`).toBeTruthy();
  });

  it.each(PUBLISHED)('publishes the $what on host port $host', ({ host, service: name, container }) => {
    expect(ports(name)).toContainEqual([host, container]);
  });

  it('only references services that exist in depends_on', () => {
    for (const [name] of Object.entries(compose.services)) {
      for (const dep of Object.keys(dependsOn(name))) {
        expect(compose.services, `${name} depends on unknown service ${dep}`).toHaveProperty([dep]);
      }
    }
  });

  it('declares every named volume a service mounts', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const name of Object.keys(compose.services)) {
      for (const { source } of mounts(name)) {
        if (isNamedVolume(source)) expect(declared, `${name} mounts undeclared volume ${source}`).toContain(source);
      }
    }
  });

  it('keeps no cleartext secrets: database passwords come from ${POSTGRES_PASSWORD:-…}', () => {
    expect(env('postgres').POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD(:-[^}]*)?\}$/);
    expect(env('temporal').POSTGRES_PWD).toMatch(/^\$\{POSTGRES_PASSWORD(:-[^}]*)?\}$/);
    for (const name of APP_SERVICES) {
      expect(env(name).DATABASE_URL).toContain('${POSTGRES_PASSWORD');
    }
  });
});

describe('postgres', () => {
  it('has a pg_isready healthcheck and keeps its data in a named volume', () => {
    const test = service('postgres').healthcheck?.test;
    expect([test].flat().join(' ')).toContain('pg_isready');
    const data = mounts('postgres').find((m) => m.target === '/var/lib/postgresql/data');
    expect(isNamedVolume(data?.source)).toBe(true);
  });

  it('holds the app database that DATABASE_URL names', () => {
    expect(env('postgres').POSTGRES_DB).toBe('privacy_backoffice');
  });
});

describe('temporal', () => {
  it('runs on the shared Postgres once it is healthy', () => {
    const e = env('temporal');
    expect(e.DB).toBe('postgres12');
    expect(e.POSTGRES_SEEDS).toBe('postgres');
    expect(e.DB_PORT).toBe('5432');
    expect(e.POSTGRES_USER).toBeTruthy();
    expect(dependsOn('temporal').postgres).toBe('service_healthy');
  });

  it('has a healthcheck, so dependants can wait for it', () => {
    const test = service('temporal').healthcheck?.test;
    expect([test].flat().join(' ')).toMatch(/temporal operator cluster health|tctl/);
  });

  it('web UI talks to the temporal service', () => {
    expect(env('temporal-ui').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });
});

describe('temporal-setup: registers the search attributes', () => {
  const setup = service('temporal-setup');
  const script = [setup.entrypoint, setup.command].flat().filter(Boolean).join('\n');
  const createRe =
    /temporal operator search-attribute create\b[^\n]*?--address[ =]temporal:7233[^\n]*?--namespace[ =](\S+)[^\n]*?--name[ =](\w+)[^\n]*?--type[ =](\w+)/g;
  const created = [...script.matchAll(createRe)].map((m) => ({ namespace: m[1], name: m[2], type: m[3] }));

  it('is a one-shot admin-tools job run after the server is healthy', () => {
    expect(setup.image).toMatch(/^temporalio\/admin-tools:/);
    expect(setup.restart).toBe('no');
    expect(dependsOn('temporal-setup').temporal).toBe('service_healthy');
  });

  it.each(SEARCH_ATTRIBUTES)('creates $name as $type', ({ name, type }) => {
    expect(created).toContainEqual(expect.objectContaining({ name, type }));
  });

  it('registers exactly the keys the workflows set (workflows/search-attributes.ts)', async () => {
    const { searchAttributeKeys } = await import('../workflows/search-attributes');
    const fromCode = searchAttributeKeys.map((k) => `${k.name}:${String(k.type).toLowerCase()}`).sort();
    const listed = SEARCH_ATTRIBUTES.map((a) => `${a.name}:${a.type.toLowerCase()}`).sort();
    expect(listed).toEqual(fromCode);
  });

  it('registers them in the namespace the app uses', () => {
    const namespace = env('api').TEMPORAL_NAMESPACE;
    expect(created.length).toBeGreaterThanOrEqual(SEARCH_ATTRIBUTES.length);
    for (const c of created) expect(c.namespace).toBe(namespace);
  });

  it('is idempotent: an already registered attribute does not fail the job', () => {
    for (const { name } of SEARCH_ATTRIBUTES) {
      const line = script.split('\n').find((l) => new RegExp(`--name[ =]${name}\\b`).test(l)) ?? '';
      expect(line, `${name}: create must tolerate "already exists"`).toMatch(/\|\||already exists/);
    }
  });
});

describe.each(APP_SERVICES)('%s', (name) => {
  const s = service(name);

  it('is built from the repository Dockerfile', () => {
    const b = s.build;
    const context = typeof b === 'string' ? b : b?.context;
    const file = typeof b === 'string' ? undefined : b?.dockerfile;
    expect(context).toBe('.');
    expect(file ?? 'Dockerfile').toBe('Dockerfile');
  });

  it(`runs the compiled entry point dist/${name}/main.js with plain node`, () => {
    expect(commandText(s)).toBe(`node dist/${name}/main.js`);
  });

  it.each(CONFIG)('sets $name', ({ name: variable, compose: expected, policyDefault }) => {
    const value = env(name)[variable];
    expect(value, `${variable} missing from ${name}'s environment`).toBeDefined();
    if (policyDefault !== undefined) {
      expect(value).toBe(`\${${variable}:-${policyDefault}}`);
    } else if (expected instanceof RegExp) {
      expect(value).toMatch(expected);
    } else {
      expect(value).toBe(expected);
    }
  });

  it('reaches Postgres, Temporal and SMTP through the compose service names', () => {
    const e = env(name);
    expect(new URL(e.DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).hostname).toBe('postgres');
    expect(e.TEMPORAL_ADDRESS!.split(':')[0]).toBe('temporal');
    expect(new URL(e.SMTP_URL!).hostname).toBe('mailpit');
    for (const target of ['postgres', 'temporal', 'mailpit']) expect(compose.services).toHaveProperty([target]);
  });

  it('starts after Postgres is healthy, Temporal is up and the search attributes exist', () => {
    const d = dependsOn(name);
    expect(d.postgres).toBe('service_healthy');
    expect(d).toHaveProperty('temporal');
    expect(d['temporal-setup']).toBe('service_completed_successfully');
    expect(d).toHaveProperty('mailpit');
  });

  it('mounts the shared named data volume at DATA_DIR', () => {
    const dataDir = env(name).DATA_DIR;
    const mount = mounts(name).find((m) => m.target === dataDir);
    expect(isNamedVolume(mount?.source), `${name} needs a named volume at ${dataDir}`).toBe(true);
  });
});

describe('development mode (issue 12)', () => {
  // The variables as compose resolves them with nothing set in the shell: `${VAR:-default}` → default.
  const resolved = (name: 'api' | 'worker') =>
    Object.fromEntries(Object.entries(env(name)).map(([k, v]) => [k, v.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));

  it.each(APP_SERVICES)('%s starts in development mode, which production mode would refuse', (name) => {
    const e = resolved(name);
    expect(loadConfig(e).NODE_ENV).toBe('development');
    let refused: string[] = [];
    try {
      loadConfig({ ...e, NODE_ENV: 'production' });
    } catch (err) {
      refused = (err as ConfigError).problems.map((p) => p.split(':')[0]!);
    }
    expect(refused).toEqual(['PUBLIC_URL', 'SMTP_URL', 'TEMPORAL_TLS', 'DATABASE_URL', 'PAYLOAD_KEYS', 'DATA_KEYS']);
  });
});

describe('api and worker share one image and one recording store', () => {
  it('mount the same volume at DATA_DIR', () => {
    const [api, worker] = APP_SERVICES.map((n) => mounts(n).find((m) => m.target === env(n).DATA_DIR)?.source);
    expect(api).toBeDefined();
    expect(worker).toBe(api);
  });
});

describe('monitoring: Prometheus scrapes the api and the worker, Grafana shows the promises (issue 15)', () => {
  const read = (relative: string) => readFileSync(new URL(`../${relative}`, import.meta.url), 'utf8');
  /** The repository file a service mounts at `target`, checked to exist. */
  const mountedFile = (name: string, target: string) => {
    const source = mounts(name).find((m) => m.target === target)?.source;
    expect(source, `${name} mounts nothing at ${target}`).toMatch(/^\.\//);
    expect(existsSync(new URL(`../${source}`, import.meta.url)), `${source} is missing`).toBe(true);
    return source!.replace(/^\.\//, '');
  };
  type ScrapeConfig = { job_name: string; metrics_path?: string; static_configs?: { targets: string[] }[] };
  const prometheusConfig = YAML.parse(read(mountedFile('prometheus', '/etc/prometheus/prometheus.yml'))) as { scrape_configs: ScrapeConfig[] };
  const job = (name: string) => {
    const found = prometheusConfig.scrape_configs.find((j) => j.job_name === name);
    if (!found) throw new Error(`prometheus.yml has no job ${name}`);
    return { path: found.metrics_path ?? '/metrics', targets: (found.static_configs ?? []).flatMap((c) => c.targets) };
  };
  const appConfig = (name: 'api' | 'worker') => loadConfig(Object.fromEntries(Object.entries(env(name)).filter(([, v]) => !v.includes('${'))));

  it('publishes every port on the host loopback only (issue 12: no Temporal, UI or mail catcher open to the network)', () => {
    const published = Object.keys(compose.services).filter((name) => (service(name).ports ?? []).length > 0);
    expect(published).toEqual(expect.arrayContaining(['temporal', 'api', 'prometheus', 'grafana']));
    for (const name of published) {
      const raw = service(name).ports ?? [];
      expect(raw.length).toBeGreaterThan(0);
      for (const p of raw) expect(String(typeof p === 'object' ? '' : p), `${name} port ${JSON.stringify(p)}`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('keeps samples and Grafana state in named volumes', () => {
    expect(isNamedVolume(mounts('prometheus').find((m) => m.target === '/prometheus')?.source)).toBe(true);
    expect(isNamedVolume(mounts('grafana').find((m) => m.target === '/var/lib/grafana')?.source)).toBe(true);
  });

  it('Prometheus is given the configuration file the compose file mounts', () => {
    expect(commandText(service('prometheus'))).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });

  it("scrapes the api's /metrics on its PORT, and the api lets this scraper in from the network", () => {
    const api = job('api');
    expect(api.path).toBe('/metrics');
    expect(api.targets).toEqual([`api:${env('api').PORT}`]);
    // /metrics refuses non-loopback callers unless told otherwise; Prometheus is another container.
    expect(appConfig('api').METRICS_ALLOW_REMOTE).toBe(true);
  });

  it("scrapes the worker's Temporal SDK exporter where WORKER_METRICS_ADDRESS binds it, without publishing it", () => {
    const address = appConfig('worker').WORKER_METRICS_ADDRESS;
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
    expect(host, 'reachable from the compose network').toBe('0.0.0.0');
    const worker = job('worker');
    expect(worker.path).toBe('/metrics');
    expect(worker.targets).toEqual([`worker:${port}`]);
    expect(ports('worker')).toEqual([]);
  });

  it('Grafana is provisioned with that Prometheus as its data source', () => {
    const provisioning = mountedFile('grafana', '/etc/grafana/provisioning');
    const datasources = YAML.parse(read(`${provisioning}/datasources/prometheus.yml`)) as { datasources: { type: string; uid: string; url: string }[] };
    expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', uid: 'prometheus', url: 'http://prometheus:9090' })]);
    expect(dependsOn('grafana')).toHaveProperty('prometheus');
  });

  it('Grafana loads the dashboards folder the compose file mounts', () => {
    const provisioning = mountedFile('grafana', '/etc/grafana/provisioning');
    const dashboards = YAML.parse(read(`${provisioning}/dashboards/promises.yml`)) as { providers: { type: string; options: { path: string } }[] };
    const folder = mountedFile('grafana', dashboards.providers[0]!.options.path);
    expect(new URL(`../${folder}/promises.json`, import.meta.url).href).toBe(PROMISES_DASHBOARD.href);
    expect(env('grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${dashboards.providers[0]!.options.path}/promises.json`);
  });

  it('the dashboard reads only metrics the app exports, and shows every promise gauge', () => {
    const dashboard = JSON.parse(readFileSync(PROMISES_DASHBOARD, 'utf8')) as { uid: string; panels: { datasource?: { uid: string }; targets?: unknown[] }[] };
    expect(dashboardExpressions(dashboard).length).toBeGreaterThan(10);
    for (const panel of dashboard.panels.filter((p) => p.targets)) expect(panel.datasource).toEqual({ type: 'prometheus', uid: 'prometheus' });

    const metrics = createMetrics({ sql: undefined as never, log: createLogger('compose-test', 'silent'), retentionSweepInterval: 'PT1H' });
    const exported = new Set(metrics.names());
    const histogramSeries = (name: string) => name.replace(/_(bucket|sum|count)$/, '');
    const used = dashboardMetricNames();
    // `up` is Prometheus's own; `temporal_*` come from the worker's SDK exporter, whose names
    // test/metrics.test.ts checks against a real worker.
    const unknown = used.filter((n) => n !== 'up' && !n.startsWith('temporal_') && !exported.has(n) && !exported.has(histogramSeries(n)));
    expect(unknown, 'metric names the dashboard reads but /metrics does not serve').toEqual([]);
    for (const g of PROMISE_GAUGES) expect(used, `${g.name} on the dashboard`).toContain(g.name);
    expect(used).toContain('privacy_recording_deletions_total');
  });
});

describe('Dockerfile', () => {
  const instructions = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = dockerfile.split(/^FROM\s/im);
  const finalStage = stages.at(-1) ?? '';

  it('exists', () => {
    expect(existsSync(dockerfileUrl)).toBe(true);
  });

  it('is based on node:20-bookworm-slim', () => {
    const froms = instructions.filter((l) => /^FROM\s/i.test(l));
    expect(froms.length).toBeGreaterThan(0);
    for (const f of froms) expect(f).toMatch(/^FROM\s+node:20-bookworm-slim\b/i);
  });

  it('installs production dependencies with lifecycle scripts (native binaries)', () => {
    const code = instructions.join('\n'); // comments may mention the flag, instructions may not
    expect(code).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(code).not.toMatch(/--ignore-scripts/);
  });

  const buildStage = stages.find((stage) => /^RUN\s+npm run build\b/m.test(stage)) ?? '';

  it('builds in a stage of its own with `npm run build`, a script of package.json', () => {
    expect(buildStage).not.toBe('');
    expect(buildStage).not.toBe(finalStage);
    expect(packageJson.scripts.build).toBeTruthy();
  });

  it.each(SOURCE_DIRS)('copies %s/ into the build stage', (dir) => {
    expect(buildStage).toMatch(new RegExp(`^COPY\\b[^\\n]*\\s${dir}/?\\s`, 'm'));
  });

  it('copies package.json, package-lock.json and tsconfig.json into the build stage', () => {
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json']) {
      expect(buildStage).toMatch(new RegExp(`^COPY\\b[^\\n]*\\s${f.replaceAll('.', '\\.')}\\b`, 'm'));
    }
  });

  it('runs the build output: dist/ from the build stage and package.json ("type": "module"), no TypeScript sources', () => {
    expect(finalStage).toMatch(/^COPY\s+--from=build\b[^\n]*\s\/app\/dist\s+\.\/dist\s*$/m);
    expect(finalStage).toMatch(/^COPY\b[^\n]*\spackage\.json\b/m);
    for (const dir of SOURCE_DIRS) expect(finalStage).not.toMatch(new RegExp(`^COPY\\b(?![^\\n]*--from=)[^\\n]*\\s${dir}/?\\s`, 'm'));
  });

  it('exposes 3000 and keeps DATA_DIR at /data', () => {
    expect(instructions).toContainEqual(expect.stringMatching(/^EXPOSE\s+(.*\s)?3000(\/tcp)?(\s|$)/i));
    expect(finalStage).toMatch(/DATA_DIR=\/data\b/);
  });

  it('runs as a non-root user', () => {
    const users = finalStage
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^USER\s/i.test(l))
      .map((l) => l.split(/\s+/)[1]!.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('starts the API by default', () => {
    const cmd = instructions.filter((l) => /^CMD\s/i.test(l)).at(-1) ?? '';
    expect(cmd.replace(/[[\]",]/g, ' ').replace(/\s+/g, ' ').trim()).toBe('CMD node dist/api/main.js');
  });
});

describe('.dockerignore', () => {
  const patterns = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  // dist: the image builds its own; a local build must not end up in it.
  it.each(['node_modules', '.git', 'data', 'dist'])('keeps %s out of the build context', (p) => {
    expect(patterns).toContain(p);
  });

  it('does not exclude what the image needs', () => {
    for (const needed of [...SOURCE_DIRS, 'package.json', 'package-lock.json', 'tsconfig.json']) {
      expect(patterns, `${needed} must reach the build`).not.toContain(needed);
    }
  });
});
