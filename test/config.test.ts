import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, isProduction, loadConfig, productionProblems, temporalTlsOn } from '../lib/config';
import { temporalConnectionOptions } from '../lib/temporal';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  it("defaults to the policy's own numbers", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      DATABASE_URL: 'postgres://127.0.0.1:5432/privacy_backoffice',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'privacy-backoffice',
      MAIL_FROM: 'TopCall <kundeservice@topcall.dk>',
      STAFF_EMAIL: 'privacy@topcall.dk',
      PUBLIC_URL: 'http://127.0.0.1:3000',
      RECORDING_RETENTION: 'P3M',
      RETENTION_SWEEP_INTERVAL: 'PT1H',
      DISPUTE_REVIEW_INTERVAL: 'P30D',
      REQUEST_SLA: 'P7D',
      REQUEST_REMINDERS: ['P3D', 'P5D'],
      REQUEST_ESCALATION: 'P6D',
      POLICY_NOTICE_PERIOD: 'P30D',
    });
    expect(config.TEMPORAL_ADDRESS).toBeUndefined();
    expect(config.SMTP_URL).toBeUndefined();
    expect(config.STAFF_BOOTSTRAP_TOKEN).toBeUndefined();
  });

  it('accepts a compressed clock in ISO-8601 seconds', () => {
    const config = loadConfig({ REQUEST_SLA: 'PT20S', REQUEST_REMINDERS: 'PT5S, PT10S', REQUEST_ESCALATION: 'PT15S', RETENTION_SWEEP_INTERVAL: 'PT2S' });
    expect(config.REQUEST_REMINDERS).toEqual(['PT5S', 'PT10S']);
    expect(config.RETENTION_SWEEP_INTERVAL).toBe('PT2S');
  });

  it('names the variable and the bad value when a duration is not ISO-8601 (REQUEST_SLA=seven)', () => {
    expect(problemsOf({ REQUEST_SLA: 'seven' })).toEqual([
      'REQUEST_SLA: must be a positive ISO-8601 duration such as P7D or PT20S (got "seven")',
    ]);
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'eighty', RECORDING_RETENTION: '-P3M', STAFF_EMAIL: 'nobody', TEMPORAL_ADDRESS: 'http://temporal' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['PORT', 'RECORDING_RETENTION', 'STAFF_EMAIL', 'TEMPORAL_ADDRESS']);
  });

  it('refuses a sweep interval in months, which has no fixed length', () => {
    expect(problemsOf({ RETENTION_SWEEP_INTERVAL: 'P1M' })[0]).toMatch(/^RETENTION_SWEEP_INTERVAL: must have a fixed length/);
  });

  it('refuses reminders or an escalation that fall after the 7-day answer is due', () => {
    expect(problemsOf({ REQUEST_REMINDERS: 'P3D,P8D' })).toEqual(['REQUEST_REMINDERS: P8D falls after REQUEST_SLA (P7D) (got "P3D,P8D")']);
    expect(problemsOf({ REQUEST_ESCALATION: 'P10D' })[0]).toMatch(/^REQUEST_ESCALATION: P10D falls after REQUEST_SLA/);
  });

  it('never echoes a secret in its error', () => {
    const problems = problemsOf({ STAFF_BOOTSTRAP_TOKEN: 'short-secret', SMTP_URL: 'http://mailer:hunter2@mail.example' });
    expect(problems.join('\n')).not.toMatch(/short-secret|hunter2/);
    expect(problems.join('\n')).toMatch(/STAFF_BOOTSTRAP_TOKEN: must be at least 32 characters/);
    expect(problems.join('\n')).toMatch(/SMTP_URL: must be a URL such as smtp:/);
  });

  it('serves metrics to this machine only, and runs the worker exporter on 127.0.0.1:9464, by default (issue 15)', () => {
    const config = loadConfig({});
    expect(config.METRICS_ALLOW_REMOTE).toBe(false);
    expect(config.WORKER_METRICS_ADDRESS).toBe('127.0.0.1:9464');
    expect(loadConfig({ METRICS_ALLOW_REMOTE: 'true', WORKER_METRICS_ADDRESS: '0.0.0.0:9464' })).toMatchObject({ METRICS_ALLOW_REMOTE: true, WORKER_METRICS_ADDRESS: '0.0.0.0:9464' });
    expect(loadConfig({ METRICS_ALLOW_REMOTE: '0', WORKER_METRICS_ADDRESS: '[::1]:9464' })).toMatchObject({ METRICS_ALLOW_REMOTE: false, WORKER_METRICS_ADDRESS: '[::1]:9464' });
    expect(loadConfig({ WORKER_METRICS_ADDRESS: '' }).WORKER_METRICS_ADDRESS, 'empty turns the exporter off').toBe('');
  });

  it('refuses a metrics switch that is not true/false, and an exporter address that is no IP and port', () => {
    expect(problemsOf({ METRICS_ALLOW_REMOTE: 'sometimes' })).toEqual(['METRICS_ALLOW_REMOTE: must be true or false (got "sometimes")']);
    // The SDK binds natively and takes no host names.
    for (const bad of ['localhost:9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:99999', '::1:9464', 'http://127.0.0.1:9464']) {
      expect(problemsOf({ WORKER_METRICS_ADDRESS: bad })[0], bad).toMatch(/^WORKER_METRICS_ADDRESS: must be an IP address and port/);
    }
  });

  it('treats empty TEMPORAL_ADDRESS and SMTP_URL as unset (embedded services)', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: '', SMTP_URL: '' });
    expect(config.TEMPORAL_ADDRESS).toBeUndefined();
    expect(config.SMTP_URL).toBeUndefined();
  });
});

describe('Temporal TLS, mTLS and API key (issue 12)', () => {
  const dir = mkdtempSync(path.join(inject('runTempDir'), 'temporal-tls-'));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
  const crt = file('client.pem', '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
  const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nsecret-key-bytes\n-----END PRIVATE KEY-----\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('connects in plaintext when nothing asks for TLS (the embedded dev server), as before', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233' });
    expect(temporalTlsOn(config)).toBe(false);
    expect(temporalConnectionOptions(config)).toEqual({ address: 'temporal:7233' });
    expect(temporalConnectionOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233' });
  });

  it('turns TLS on with TEMPORAL_TLS=true, trusting the system CAs', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_TLS: 'true' });
    expect(temporalTlsOn(config)).toBe(true);
    expect(temporalConnectionOptions(config)).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {} });
  });

  it('reads the CA, the mTLS pair and the server name into the connection options', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: crt,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
    });
    expect(temporalTlsOn(config), 'a certificate implies TLS').toBe(true);
    const options = temporalConnectionOptions(config);
    expect(options.address).toBe('temporal.internal:7233');
    expect(options.tls?.serverNameOverride).toBe('frontend.temporal.internal');
    expect(Buffer.from(options.tls!.serverRootCACertificate!).toString()).toContain('ca');
    expect(Buffer.from(options.tls!.clientCertPair!.crt).toString()).toContain('client');
    expect(Buffer.from(options.tls!.clientCertPair!.key).toString()).toContain('secret-key-bytes');
    expect(options.apiKey).toBeUndefined();
  });

  it('sends an API key over TLS (an API key alone implies TLS)', () => {
    const options = temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'key-abc' }));
    expect(options).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'key-abc' });
  });

  it('carries TLS onto the wire: the plaintext test server answers the plain options and refuses the TLS ones', async () => {
    const address = inject('temporalAddress');
    const plain = await Connection.connect({ ...temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: address })), connectTimeout: 10_000 });
    await plain.close();
    const tls = temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS: 'true' }));
    await expect(Connection.connect({ ...tls, connectTimeout: 1500 })).rejects.toThrow();
    await expect(NativeConnection.connect(tls)).rejects.toThrow();
  });

  it('refuses half an mTLS pair, and TLS switched off under a credential', () => {
    expect(problemsOf({ TEMPORAL_TLS_CLIENT_CERT_PATH: crt })).toEqual([
      'TEMPORAL_TLS_CLIENT_KEY_PATH: must be set with TEMPORAL_TLS_CLIENT_CERT_PATH (the client certificate needs its key)',
    ]);
    expect(problemsOf({ TEMPORAL_TLS_CLIENT_KEY_PATH: key })[0]).toMatch(/^TEMPORAL_TLS_CLIENT_CERT_PATH: must be set with TEMPORAL_TLS_CLIENT_KEY_PATH/);
    const problems = problemsOf({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'key-abc' });
    expect(problems).toEqual(['TEMPORAL_TLS: is false, but TEMPORAL_API_KEY needs TLS (an API key or client certificate is not sent in clear) (got "false")']);
    expect(problemsOf({ TEMPORAL_TLS: 'maybe' })).toEqual(['TEMPORAL_TLS: must be true or false (got "maybe")']);
  });

  it('names the variable of a certificate file it cannot read, and never echoes the API key', () => {
    const config = loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'missing.pem'), TEMPORAL_API_KEY: 'key-abc' });
    expect(() => temporalConnectionOptions(config)).toThrow(ConfigError);
    try {
      temporalConnectionOptions(config);
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([`TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${JSON.stringify(path.join(dir, 'missing.pem'))} (ENOENT)`]);
    }
    const problems = problemsOf({ TEMPORAL_API_KEY: 'key-abc', TEMPORAL_TLS: 'false' });
    expect(problems.join('\n')).not.toContain('key-abc');
  });
});

describe('production mode, NODE_ENV=production (issue 12)', () => {
  /** A production configuration that passes: https links, SMTP over TLS, Temporal over mTLS. */
  const safe: Record<string, string> = {
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://privacy.topcall.dk',
    DATABASE_URL: 'postgres://backoffice:s3cret@db.internal:5432/privacy_backoffice?sslmode=verify-full',
    SMTP_URL: 'smtps://mailer:hunter2@smtp.topcall.dk:465',
    TEMPORAL_ADDRESS: 'temporal.internal:7233',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/run/secrets/temporal-ca.pem',
    TEMPORAL_TLS_CLIENT_CERT_PATH: '/run/secrets/temporal-client.pem',
    TEMPORAL_TLS_CLIENT_KEY_PATH: '/run/secrets/temporal-client.key',
    PAYLOAD_KEYS: `2026-1:${Buffer.alloc(32, 9).toString('base64')}`,
    DATA_KEYS: `2026-1:${Buffer.alloc(32, 7).toString('base64')}`,
  };
  const without = (...keys: string[]) => Object.fromEntries(Object.entries(safe).filter(([k]) => !keys.includes(k)));
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected production mode to refuse');
  };

  it('accepts a safe configuration: https, smtps or required STARTTLS, Temporal over mTLS or with an API key', () => {
    expect(loadConfig(safe)).toMatchObject({ NODE_ENV: 'production', PUBLIC_URL: 'https://privacy.topcall.dk' });
    expect(loadConfig({ ...safe, SMTP_URL: 'smtp://mailer:pw@smtp.topcall.dk:587?requireTLS=true' }).SMTP_URL).toContain('requireTLS');
    const cloud = { ...without('TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'), TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'key-abc' };
    expect(loadConfig(cloud).TEMPORAL_API_KEY).toBe('key-abc');
    expect(productionProblems(loadConfig(safe))).toEqual([]);
  });

  it('refuses an http PUBLIC_URL', () => {
    expect(refusal({ ...safe, PUBLIC_URL: 'http://privacy.topcall.dk' }).problems).toEqual([
      'PUBLIC_URL: must be an https:// URL in production: links in emails carry sign-in and download tokens (got "http://privacy.topcall.dk")',
    ]);
  });

  it('refuses SMTP without TLS, the development mail sink, and an unverified mail server, never echoing the password', () => {
    expect(refusal(without('SMTP_URL')).problems).toEqual(['SMTP_URL: must be set in production: unset means the development mail sink on 127.0.0.1']);
    const plain = refusal({ ...safe, SMTP_URL: 'smtp://mailer:hunter2@smtp.topcall.dk:587' });
    expect(plain.problems).toEqual([
      'SMTP_URL: must use TLS in production: smtps://host:465, or STARTTLS required with smtp://host:587?requireTLS=true (got "smtp://mailer:***@smtp.topcall.dk:587")',
    ]);
    expect(plain.message).not.toContain('hunter2');
    expect(refusal({ ...safe, SMTP_URL: 'smtp://smtp.topcall.dk:587?requireTLS=true&ignoreTLS=true' }).problems[0]).toMatch(/^SMTP_URL: must use TLS in production/);
    expect(refusal({ ...safe, SMTP_URL: 'smtps://smtp.topcall.dk:465?tls.rejectUnauthorized=false' }).problems).toEqual([
      'SMTP_URL: must verify the mail server\'s certificate in production (no tls.rejectUnauthorized=false) (got "smtps://smtp.topcall.dk:465?tls.rejectUnauthorized=false")',
    ]);
  });

  it('refuses Postgres without TLS or without checking the server certificate, never echoing the password', () => {
    const plain = refusal({ ...safe, DATABASE_URL: 'postgres://backoffice:s3cret@db.internal:5432/privacy_backoffice' });
    expect(plain.problems).toEqual([
      'DATABASE_URL: must use TLS and verify the server in production: add ?sslmode=verify-full (for a private CA, name its certificate in NODE_EXTRA_CA_CERTS) (got "postgres://backoffice:***@db.internal:5432/privacy_backoffice")',
    ]);
    expect(plain.message).not.toContain('s3cret');
    expect(refusal({ ...safe, DATABASE_URL: 'postgres://db.internal/privacy_backoffice?sslmode=require' }).problems[0]).toContain("(sslmode=require does not check the server's certificate)");
    expect(loadConfig({ ...safe, DATABASE_URL: 'postgres://db.internal/privacy_backoffice?sslrootcert=system' }).NODE_ENV).toBe('production');
  });

  it('refuses to run without PAYLOAD_KEYS: the development key would sit in Postgres beside the data (issue 12)', () => {
    expect(refusal(without('PAYLOAD_KEYS')).problems).toEqual([
      'PAYLOAD_KEYS: must be set in production (id:base64key, 32-byte keys from your secret store): unset means a development key kept in Postgres beside the data',
    ]);
  });

  it('refuses to run without DATA_KEYS: the master key would sit in Postgres beside the person keys it wraps (issue 12)', () => {
    expect(refusal(without('DATA_KEYS')).problems).toEqual([
      'DATA_KEYS: must be set in production (id:base64key, 32-byte keys from your secret store): unset means a development master key kept in Postgres beside the person keys it wraps',
    ]);
    const bad = refusal({ ...safe, DATA_KEYS: `a:${Buffer.alloc(16, 1).toString('base64')}` });
    expect(bad.problems).toEqual(['DATA_KEYS: key "a" must be 32 bytes in base64 (e.g. from `openssl rand -base64 32`) (got "<hidden>")']);
    expect(refusal({ ...safe, DATA_KEY_ID: 'other' }).problems).toEqual(['DATA_KEY_ID: is not one of the key ids (2026-1) (got "other")']);
  });

  it('refuses Temporal without TLS, without a client credential, or the development server', () => {
    expect(refusal(without('TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH')).problems).toEqual([
      'TEMPORAL_TLS: must be on in production: set TEMPORAL_TLS=true (with TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA)',
    ]);
    expect(refusal({ ...without('TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH'), TEMPORAL_TLS: 'false' }).problems).toEqual([
      'TEMPORAL_TLS: must be on in production: set TEMPORAL_TLS=true (with TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA) (got "false")',
    ]);
    expect(refusal({ ...without('TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH') }).problems).toEqual([
      'TEMPORAL_TLS_CLIENT_CERT_PATH or TEMPORAL_API_KEY: one must be set in production, so that Temporal admits only the back office: a client certificate (with TEMPORAL_TLS_CLIENT_KEY_PATH, mTLS) or an API key',
    ]);
    expect(refusal(without('TEMPORAL_ADDRESS')).problems).toEqual([
      'TEMPORAL_ADDRESS: must be set in production: unset means the development server on 127.0.0.1:7233',
    ]);
  });

  it('names every offending setting at once, under a heading that says why', () => {
    const err = refusal({ NODE_ENV: 'production' });
    expect(err.problems.map((p) => p.split(':')[0])).toEqual(['PUBLIC_URL', 'SMTP_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_TLS', 'DATABASE_URL', 'PAYLOAD_KEYS', 'DATA_KEYS']);
    expect(err.message).toMatch(/^Refusing to start in production mode \(NODE_ENV=production\):\n {2}- PUBLIC_URL: /);
  });

  it('reports a malformed value first, as in development', () => {
    expect(problemsOf({ ...safe, PUBLIC_URL: 'privacy.topcall.dk' })).toEqual(['PUBLIC_URL: must be a URL such as https://privacy.topcall.dk (got "privacy.topcall.dk")']);
  });

  it('leaves development unchanged: the defaults (http, the mail sink, plaintext dev server) start without NODE_ENV or with another one', () => {
    for (const NODE_ENV of [undefined, 'development', 'test']) {
      const config = loadConfig(NODE_ENV ? { NODE_ENV } : {});
      expect(config.PUBLIC_URL).toBe('http://127.0.0.1:3000');
      expect(config.SMTP_URL).toBeUndefined();
      expect(temporalTlsOn(config)).toBe(false);
      expect(isProduction(config)).toBe(false);
    }
    // What production refuses is still reported when asked, e.g. for a readiness page.
    expect(productionProblems(loadConfig({})).length).toBe(7);
  });
});
