import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { isFixedLength, parseIsoDuration, addCalendarDuration } from './durations';
import { parseKeyRing } from './payload-keys';

/**
 * Every setting of the back office, parsed once from the environment (see docs/contract.md).
 * The policy's own numbers are the defaults; every period is an ISO-8601 duration so the
 * whole system can run on a compressed clock.
 */

const isoDuration = (example: string) =>
  z
    .string()
    .trim()
    .refine((v) => parseIsoDuration(v) !== undefined, {
      message: `must be a positive ISO-8601 duration such as ${example} or PT20S`,
    });

const fixedIsoDuration = (example: string) =>
  isoDuration(example).refine((v) => isFixedLength(parseIsoDuration(v)!), {
    message: `must have a fixed length (days, hours, minutes or seconds, such as ${example}); months and years vary`,
  });

/** A whole number in a range, from an environment string. */
const wholeNumber = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ message }).int({ message }).min(min, { message }).max(max, { message });
};
const port = z.coerce
  .number({ message: 'must be a port number from 1 to 65535' })
  .int({ message: 'must be a port number from 1 to 65535' })
  .min(1, { message: 'must be a port number from 1 to 65535' })
  .max(65535, { message: 'must be a port number from 1 to 65535' });
const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined));

/** true/false (also 1/0, yes/no), for switches. */
const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), { message: 'must be true or false' })
  .transform((v) => ['true', '1', 'yes'].includes(v));

/**
 * An IP address and port to listen on (`127.0.0.1:9464`, `0.0.0.0:9464`, `[::1]:9464`): the
 * Temporal SDK binds it natively and takes no host names. Empty ('') means off.
 */
const listenAddress = z
  .string()
  .trim()
  .refine(
    (v) => {
      if (v === '') return true;
      const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v);
      if (!m) return false;
      const host = m[1] ?? m[2]!;
      const port = Number(m[3]);
      return isIP(host) === (m[1] ? 6 : 4) && port >= 1 && port <= 65535;
    },
    { message: 'must be an IP address and port such as 127.0.0.1:9464 or 0.0.0.0:9464, or empty to turn it off' },
  );

const urlWithProtocols = (protocols: string[], example: string) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      { message: `must be a URL such as ${example}` },
    );

/** The settings that only mean something over TLS: any of them turns TLS on unless TEMPORAL_TLS says otherwise. */
const TEMPORAL_TLS_SETTINGS = [
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_API_KEY',
] as const;

const schema = z
  .object({
    PORT: port.default(3000),
    DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:'], 'postgres://127.0.0.1:5432/privacy_backoffice').default(
      'postgres://127.0.0.1:5432/privacy_backoffice',
    ),
    TEMPORAL_ADDRESS: optionalString.refine((v) => v === undefined || /^[^\s/:]+:\d{1,5}$/.test(v), {
      message: 'must be host:port, such as 127.0.0.1:7233',
    }),
    TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
    // Issue 12: TLS, mTLS and API-key settings for every Temporal connection, under the names of
    // Temporal's own environment configuration (the `temporal` CLI and the SDKs read the same).
    // TEMPORAL_TLS unset: on when a certificate, a CA or an API key is given, off otherwise.
    TEMPORAL_TLS: optionalString.pipe(flag.optional()),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: optionalString,
    TEMPORAL_TLS_CLIENT_CERT_PATH: optionalString,
    TEMPORAL_TLS_CLIENT_KEY_PATH: optionalString,
    TEMPORAL_TLS_SERVER_NAME: optionalString,
    TEMPORAL_API_KEY: optionalString,
    TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default('privacy-backoffice'),
    // Issue 12: the AES-256-GCM key ring of the payload codec (lib/payload-codec.ts), as
    // `id:base64key,id:base64key` (32-byte keys); the first encrypts unless PAYLOAD_KEY_ID names
    // another, every one decrypts. Unset (development only): a key generated once and kept in
    // Postgres (app_secrets.payload_key_dev). A secret: never echoed, never logged.
    PAYLOAD_KEYS: optionalString,
    PAYLOAD_KEY_ID: optionalString,
    // Issue 12: the master keys (AES-256-GCM, same `id:base64key` form) that wrap each person's
    // data key in Postgres (person_keys); the key of audio, export packages and outbox bodies at
    // rest. The first wraps new keys unless DATA_KEY_ID names another; every one unwraps. Unset
    // (development only): a key generated once and kept in app_secrets.data_key_dev. A secret.
    DATA_KEYS: optionalString,
    DATA_KEY_ID: optionalString,
    // Issue 12: the longest a master key of DATA_KEYS may stay the current one. A database backup
    // taken before an erasure opens that person's copies until the master key of the backup is
    // retired, so this bounds how long erased data stays readable in backups; the erasure answer
    // says it, and the data-retention sweep emails staff once a day when it is overdue.
    DATA_KEY_MAX_AGE: isoDuration('P30D').default('P30D'),
    // The Temporal Web UI's origin(s), comma-separated, allowed by CORS to call /codec/*;
    // unset: http://127.0.0.1:TEMPORAL_UI_PORT (the embedded dev server's UI).
    TEMPORAL_UI_ORIGIN: optionalString.refine(
      (v) => v === undefined || v.split(',').every((o) => /^https?:\/\/[^/\s?#]+$/.test(o.trim())),
      { message: 'must be one or more origins (scheme, host and port, no path), comma-separated, such as https://temporal-ui.topcall.dk' },
    ),
    SMTP_URL: optionalString.pipe(
      urlWithProtocols(['smtp:', 'smtps:'], 'smtp://user:pass@host:587').optional(),
    ),
    MAIL_FROM: z.string().trim().min(3).default('TopCall <kundeservice@topcall.dk>'),
    STAFF_EMAIL: z.email({ message: 'must be an email address' }).default('privacy@topcall.dk'),
    PUBLIC_URL: urlWithProtocols(['http:', 'https:'], 'https://privacy.topcall.dk')
      .default('http://127.0.0.1:3000')
      .transform((v) => v.replace(/\/+$/, '')),
    DATA_DIR: z.string().trim().min(1).default('./data').transform((v) => path.resolve(v)),
    STAFF_BOOTSTRAP_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 32, {
      message: 'must be at least 32 characters long (it grants admin rights; use it to create real tokens)',
    }),
    RECORDING_RETENTION: isoDuration('P3M').default('P3M'),
    RETENTION_SWEEP_INTERVAL: fixedIsoDuration('PT1H').default('PT1H'),
    DISPUTE_REVIEW_INTERVAL: fixedIsoDuration('P30D').default('P30D'),
    REQUEST_SLA: isoDuration('P7D').default('P7D'),
    REQUEST_REMINDERS: z
      .string()
      .trim()
      .default('P3D,P5D')
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(isoDuration('P3D'))),
    REQUEST_ESCALATION: isoDuration('P6D').default('P6D'),
    POLICY_NOTICE_PERIOD: isoDuration('P30D').default('P30D'),
    TRANSFER_NOTICE_PERIOD: isoDuration('P30D').default('P30D'),
    TRANSFER_APPROVAL_TIMEOUT: fixedIsoDuration('P14D').default('P14D'),
    TRANSFER_ACK_TIMEOUT: fixedIsoDuration('P14D').default('P14D'),
    REQUEST_REPEAT_WINDOW: isoDuration('P6M').default('P6M'),
    EXPORT_LINK_TTL: fixedIsoDuration('P7D').default('P7D'),
    PASSWORD_LINK_TTL: fixedIsoDuration('P7D').default('P7D'),
    CUSTOMER_SESSION_TTL: fixedIsoDuration('P30D').default('P30D'),
    STAFF_TOKEN_TTL: fixedIsoDuration('P90D').default('P90D'),
    SYSTEM_CHECK_TIMEOUT: fixedIsoDuration('PT1M').default('PT1M'),
    EXPORT_LINK_MAX_DOWNLOADS: wholeNumber(1, 20).default(3),
    POLICY_CATCHUP_INTERVAL: fixedIsoDuration('PT1H').default('PT1H'),
    // D15: how long each kind of personal data is kept (db/personal-data.ts; swept by the
    // data-retention Schedule every DATA_RETENTION_SWEEP_INTERVAL).
    EMAIL_RETENTION: isoDuration('P1Y').default('P1Y'),
    LOGIN_FAILURE_RETENTION: isoDuration('P7D').default('P7D'),
    REQUEST_DETAILS_RETENTION: isoDuration('P1Y').default('P1Y'),
    CALL_MESSAGE_RETENTION: isoDuration('P3M').default('P3M'),
    DATA_RETENTION_SWEEP_INTERVAL: fixedIsoDuration('PT1H').default('PT1H'),
    // Issue 13: how often the Schedule `workflow-starts` starts workflows a crash left recorded but unstarted.
    WORKFLOW_START_RECONCILE_INTERVAL: fixedIsoDuration('PT1M').default('PT1M'),
    MAIL_CONCURRENCY: wholeNumber(1, 64).default(5),
    // The worker's sticky cache. The SDK sizes it from the heap limit (about 2,300 on a 24 GiB
    // machine); requests and customers wait days between tasks, so that many cached runs cost
    // memory for nothing (bench/intake, 4,000 open requests: peak 1,038 MiB, 391 MiB at 200).
    WORKFLOW_CACHE_SIZE: wholeNumber(2, 100_000).default(200),
    RECORDING_MAX_BYTES: z.coerce
      .number({ message: 'must be a whole number of bytes' })
      .int({ message: 'must be a whole number of bytes' })
      .positive({ message: 'must be a whole number of bytes' })
      .default(100 * 1024 * 1024),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    TEMPORAL_UI_PORT: port.default(8233),
    MAIL_SINK_SMTP_PORT: port.default(1025),
    MAIL_SINK_WEB_PORT: port.default(1080),
    // Issue 15: /metrics answers only callers on this machine unless this is true (compose: a
    // Prometheus in the container network).
    METRICS_ALLOW_REMOTE: flag.default(false),
    // The worker's Temporal SDK metrics (Prometheus text at http://{address}/metrics); empty: off.
    WORKER_METRICS_ADDRESS: listenAddress.default('127.0.0.1:9464'),
    // Issue 12: `production` turns on the checks of productionProblems() below.
    NODE_ENV: optionalString,
  })
  .superRefine((c, ctx) => {
    if (c.PAYLOAD_KEYS !== undefined || c.PAYLOAD_KEY_ID !== undefined) {
      const { problems } = parseKeyRing(c.PAYLOAD_KEYS ?? '', c.PAYLOAD_KEY_ID);
      for (const message of problems) {
        const key = message.startsWith('PAYLOAD_KEY_ID ') ? 'PAYLOAD_KEY_ID' : 'PAYLOAD_KEYS';
        ctx.addIssue({ code: 'custom', path: [key], message: message.replace(/^PAYLOAD_KEY_ID /, '') });
      }
    }
    if (c.DATA_KEYS !== undefined || c.DATA_KEY_ID !== undefined) {
      const { problems } = parseKeyRing(c.DATA_KEYS ?? '', c.DATA_KEY_ID, 'DATA_KEY_ID');
      for (const message of problems) {
        const key = message.startsWith('DATA_KEY_ID ') ? 'DATA_KEY_ID' : 'DATA_KEYS';
        ctx.addIssue({ code: 'custom', path: [key], message: message.replace(/^DATA_KEY_ID /, '') });
      }
    }
    // mTLS takes a certificate and its key; TLS switched off cannot carry a credential.
    const cert = c.TEMPORAL_TLS_CLIENT_CERT_PATH, key = c.TEMPORAL_TLS_CLIENT_KEY_PATH;
    if (cert && !key) ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_CLIENT_KEY_PATH'], message: 'must be set with TEMPORAL_TLS_CLIENT_CERT_PATH (the client certificate needs its key)' });
    if (key && !cert) ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_CLIENT_CERT_PATH'], message: 'must be set with TEMPORAL_TLS_CLIENT_KEY_PATH (the client key needs its certificate)' });
    if (c.TEMPORAL_TLS === false) {
      const needTls = TEMPORAL_TLS_SETTINGS.filter((k) => c[k] !== undefined);
      if (needTls.length) {
        ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS'], message: `is false, but ${needTls.join(', ')} ${needTls.length > 1 ? 'need' : 'needs'} TLS (an API key or client certificate is not sent in clear)` });
      }
    }
    // Reminders and the escalation only make sense before the answer is due.
    const all = [c.REQUEST_SLA, c.REQUEST_ESCALATION, ...c.REQUEST_REMINDERS];
    if (all.some((v) => parseIsoDuration(v) === undefined)) return; // already reported above
    const receipt = new Date('2026-01-01T00:00:00Z');
    const due = addCalendarDuration(receipt, c.REQUEST_SLA).getTime();
    for (const [key, values] of [
      ['REQUEST_REMINDERS', c.REQUEST_REMINDERS],
      ['REQUEST_ESCALATION', [c.REQUEST_ESCALATION]],
    ] as const) {
      for (const v of values) {
        if (addCalendarDuration(receipt, v).getTime() > due) {
          ctx.addIssue({ code: 'custom', path: [key], message: `${v} falls after REQUEST_SLA (${c.REQUEST_SLA})` });
        }
      }
    }
  });

export type Config = z.infer<typeof schema>;

/** Whether the Temporal connections use TLS: TEMPORAL_TLS, or else whether any TLS setting or an API key is given. */
export function temporalTlsOn(config: Config): boolean {
  return config.TEMPORAL_TLS ?? TEMPORAL_TLS_SETTINGS.some((k) => config[k] !== undefined);
}

export const isProduction = (config: Config) => config.NODE_ENV === 'production';

/** The origins CORS lets call the codec endpoints: TEMPORAL_UI_ORIGIN, or the embedded UI's. */
export const temporalUiOrigins = (config: Config): string[] =>
  config.TEMPORAL_UI_ORIGIN ? config.TEMPORAL_UI_ORIGIN.split(',').map((o) => o.trim()).filter(Boolean) : [`http://127.0.0.1:${config.TEMPORAL_UI_PORT}`];

/**
 * Issue 12: what production mode (NODE_ENV=production) refuses, one line per offending
 * setting, in the form of the other configuration errors. Both the API and the worker run it
 * (through loadConfig): a deployment that is unsafe for one is unsafe for both.
 * The bootstrap token is the one check that needs the database: the API refuses to print a
 * generated admin token in production (api/main.ts, ensureBootstrapAdmin).
 */
export function productionProblems(config: Config): string[] {
  const problems: string[] = [];
  const got = (key: string, value: string) => ` (got ${JSON.stringify(redact(key, value))})`; // passwords hidden

  if (new URL(config.PUBLIC_URL).protocol !== 'https:') {
    problems.push(`PUBLIC_URL: must be an https:// URL in production: links in emails carry sign-in and download tokens (got ${JSON.stringify(config.PUBLIC_URL)})`);
  }

  if (!config.SMTP_URL) {
    problems.push('SMTP_URL: must be set in production: unset means the development mail sink on 127.0.0.1');
  } else {
    const url = new URL(config.SMTP_URL);
    const query = (name: string) => url.searchParams.get(name)?.toLowerCase();
    const tls = url.protocol === 'smtps:' || (['true', '1'].includes(query('requireTLS') ?? '') && !['true', '1'].includes(query('ignoreTLS') ?? ''));
    if (!tls) {
      problems.push(`SMTP_URL: must use TLS in production: smtps://host:465, or STARTTLS required with smtp://host:587?requireTLS=true${got('SMTP_URL', config.SMTP_URL)}`);
    } else if (['false', '0'].includes(query('tls.rejectUnauthorized') ?? '')) {
      problems.push(`SMTP_URL: must verify the mail server's certificate in production (no tls.rejectUnauthorized=false)${got('SMTP_URL', config.SMTP_URL)}`);
    }
  }

  if (!config.TEMPORAL_ADDRESS) {
    problems.push('TEMPORAL_ADDRESS: must be set in production: unset means the development server on 127.0.0.1:7233');
  }
  if (!temporalTlsOn(config)) {
    problems.push('TEMPORAL_TLS: must be on in production: set TEMPORAL_TLS=true (with TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA)' +
      (config.TEMPORAL_TLS === false ? ' (got "false")' : ''));
  } else if (!config.TEMPORAL_TLS_CLIENT_CERT_PATH && !config.TEMPORAL_API_KEY) {
    // TLS alone encrypts, but lets anyone who reaches the frontend send `decide` or `resolve`.
    problems.push('TEMPORAL_TLS_CLIENT_CERT_PATH or TEMPORAL_API_KEY: one must be set in production, so that Temporal admits only the back office: a client certificate (with TEMPORAL_TLS_CLIENT_KEY_PATH, mTLS) or an API key');
  }
  {
    // Postgres holds the personal data itself: in production it travels over TLS with the
    // server's certificate checked (postgres.js: sslmode=verify-full, or sslrootcert=system).
    const url = new URL(config.DATABASE_URL);
    const mode = url.searchParams.get('sslmode')?.toLowerCase();
    if (mode !== 'verify-full' && url.searchParams.get('sslrootcert') !== 'system') {
      problems.push(
        'DATABASE_URL: must use TLS and verify the server in production: add ?sslmode=verify-full (for a private CA, name its certificate in NODE_EXTRA_CA_CERTS)' +
          (mode ? ` (sslmode=${mode} does not check the server's certificate)` : '') +
          got('DATABASE_URL', config.DATABASE_URL),
      );
    }
  }
  if (!config.PAYLOAD_KEYS) {
    // The development key lives in the same database as the data it would protect.
    problems.push('PAYLOAD_KEYS: must be set in production (id:base64key, 32-byte keys from your secret store): unset means a development key kept in Postgres beside the data');
  }
  if (!config.DATA_KEYS) {
    // The master key must not sit beside the wrapped person keys, or destroying one would not shred its copies.
    problems.push('DATA_KEYS: must be set in production (id:base64key, 32-byte keys from your secret store): unset means a development master key kept in Postgres beside the person keys it wraps');
  }
  return problems;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[], heading = 'Invalid configuration') {
    super(`${heading}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment. Throws a ConfigError naming every bad variable and what it must be. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = schema.safeParse(env);
  if (result.success) {
    if (!isProduction(result.data)) return result.data;
    const problems = productionProblems(result.data);
    if (problems.length === 0) return result.data;
    throw new ConfigError(problems, 'Refusing to start in production mode (NODE_ENV=production)');
  }
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? 'config');
    const raw = env[key];
    const got = raw === undefined ? '' : ` (got ${JSON.stringify(redact(key, raw))})`;
    return `${key}: ${issue.message}${got}`;
  });
  throw new ConfigError([...new Set(problems)]);
}

/** Error messages name the bad value, but never a secret. */
function redact(key: string, raw: string): string {
  if (key === 'STAFF_BOOTSTRAP_TOKEN' || key === 'TEMPORAL_API_KEY' || key === 'PAYLOAD_KEYS' || key === 'DATA_KEYS') return '<hidden>';
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return raw;
  }
}

/** For entry points: print a config error plainly and exit, instead of a stack trace. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  return orExitOnConfigError(() => loadConfig(env));
}

/** Runs `fn`; a ConfigError it throws is printed plainly (no stack trace) and ends the process with 78. */
export function orExitOnConfigError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}
