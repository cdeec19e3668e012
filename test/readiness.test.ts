import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { createSql, type Sql } from '../db/index';
import { createLazyClient } from '../lib/temporal';
import { recordingStoreFor } from '../lib/recording-store';
import { freePort } from '../scripts/dev-server';
import { silentLog, stack, testConfig, testDataConverter, testPayloadCodec } from './support/stack';
import { startTcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

type Proxy = Awaited<ReturnType<typeof startTcpProxy>>;
let pgProxy: Proxy;
let temporalProxy: Proxy;
let sql: Sql;
let app: ReturnType<typeof createApp>;
let client: ReturnType<typeof createLazyClient>;

const readyz = async () => {
  const res = await app.request('/readyz');
  return { status: res.status, body: (await res.json()) as { checks: { postgres: string; temporal: string } } };
};

beforeAll(async () => {
  const pg = new URL(stack().databaseUrl);
  const [tHost, tPort] = stack().temporalAddress.split(':');
  pgProxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  temporalProxy = await startTcpProxy({ host: tHost!, port: Number(tPort) });
  pg.port = String(pgProxy.port);
  const config = testConfig({ DATABASE_URL: pg.toString(), TEMPORAL_ADDRESS: `127.0.0.1:${temporalProxy.port}` });
  sql = createSql(config.DATABASE_URL);
  client = createLazyClient(config.TEMPORAL_ADDRESS!, config.TEMPORAL_NAMESPACE, testDataConverter());
  app = createApp({ config, sql, temporal: client, store: recordingStoreFor(config.DATA_DIR), log: silentLog, payloadCodec: testPayloadCodec() });
});

afterAll(async () => {
  await client.connection.close().catch(() => {});
  await sql.end({ timeout: 1 }).catch(() => {});
  await pgProxy.close();
  await temporalProxy.close();
});

describe('/readyz', () => {
  it('is 200 when Postgres and Temporal both answer', async () => {
    const { status, body } = await readyz();
    expect(status).toBe(200);
    expect(body.checks).toEqual({ postgres: 'up', temporal: 'up' });
  });

  it('turns 503 when Postgres goes away and 200 again when it is back, without a restart', async () => {
    pgProxy.cut();
    const down = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    }, { what: '/readyz to say 503', timeoutMs: 15_000 });
    expect(down.body.checks).toEqual({ postgres: 'down', temporal: 'up' });
    expect((await app.request('/healthz')).status).toBe(200); // alive, just not ready

    pgProxy.restore();
    const up = await waitFor(async () => {
      const r = await readyz();
      return r.status === 200 ? r : undefined;
    }, { what: '/readyz to recover', timeoutMs: 30_000 });
    expect(up.body.checks.postgres).toBe('up');
  });

  it('turns 503 when Temporal goes away and 200 again when it is back', async () => {
    temporalProxy.cut();
    const down = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    }, { what: '/readyz to say 503', timeoutMs: 15_000 });
    expect(down.body.checks).toEqual({ postgres: 'up', temporal: 'down' });

    temporalProxy.restore();
    await waitFor(async () => (await readyz()).status === 200, { what: '/readyz to recover', timeoutMs: 30_000 });
  });

  it('is 503 when Temporal has never been reachable (the API still starts)', async () => {
    const nowhere = createLazyClient(`127.0.0.1:${await freePort()}`, 'default', testDataConverter());
    try {
      const lonely = createApp({ config: testConfig(), sql, temporal: nowhere, store: recordingStoreFor(testConfig().DATA_DIR), log: silentLog, payloadCodec: testPayloadCodec() });
      const res = await lonely.request('/readyz');
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ checks: { postgres: 'up', temporal: 'down' } });
    } finally {
      await nowhere.connection.close().catch(() => {});
    }
  });
});
