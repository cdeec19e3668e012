import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { updateFailureToAppError } from './temporal-errors';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ApiDeps, AppEnv } from './context';
import { authenticate } from './auth';
import { idempotency } from './idempotency';
import { QuotaExceededError, quotaExceeded } from './quota';
import { AppError, problem } from './problem';
import { findRefusedString, hasRefusedCharacter } from './schemas';
import { createRouter } from './router';
import { healthRoutes } from './routes/health';
import { docsRoutes } from './routes/docs';
import { staffTokenRoutes } from './routes/staff-tokens';
import { systemCheckRoutes } from './routes/system-checks';
import { clientRoutes } from './routes/clients';
import { callMessageRoutes } from './routes/call-messages';
import { disclosureRoutes } from './routes/disclosures';
import { transferRoutes } from './routes/transfers';
import { recordingRoutes } from './routes/recordings';
import { disputeRoutes } from './routes/disputes';
import { retentionRoutes } from './routes/retention';
import { auditRoutes } from './routes/audit';
import { customerRoutes } from './routes/customers';
import { authRoutes } from './routes/auth';
import { requestRoutes } from './routes/requests';
import { exportRoutes } from './routes/exports';
import { accountRoutes } from './routes/account';
import { siteRoutes } from './routes/site';
import { policyRoutes } from './routes/policies';
import { metricsRoutes, statsRoutes } from './routes/metrics';
import { CODEC_BODY_LIMIT, codecRoutes } from './routes/codec';
import { createMetrics } from './metrics';
import { routePath } from 'hono/route';

/** JSON bodies are small; uploads (recordings) set their own limit on their route. */
export const JSON_BODY_LIMIT = 256 * 1024;

export function createApp(deps: ApiDeps) {
  const app = createRouter();
  const metrics = createMetrics({ sql: deps.sql, log: deps.log, retentionSweepInterval: deps.config.RETENTION_SWEEP_INTERVAL });

  // An incoming X-Request-Id is kept only in a safe shape (word characters, '-', '=', ≤ 64);
  // anything else gets a fresh id, so a caller cannot write into our logs.
  app.use('*', requestId({ headerName: 'X-Request-Id', limitLength: 64 }));
  // D9, issue 11: no framing, no sniffing, no referrer, and a CSP on everything; pages (docs,
  // account) may load their own scripts and styles only. Anything under /v1 or /account can
  // carry personal data: never cached.
  const pageCsp = {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'", "'unsafe-inline'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    frameAncestors: ["'none'"],
    formAction: ["'self'"],
    baseUri: ["'none'"],
    objectSrc: ["'none'"],
  };
  const pageHeaders = secureHeaders({ contentSecurityPolicy: pageCsp, referrerPolicy: 'no-referrer', xFrameOptions: 'DENY' });
  const apiHeaders = secureHeaders({
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"] },
    referrerPolicy: 'no-referrer',
    xFrameOptions: 'DENY',
  });
  const isPage = (p: string) => p === '/docs' || p.startsWith('/docs/') || p === '/account' || p.startsWith('/account/') || p === '/privacy' || p === '/cookies';
  app.use('*', (c, next) => (isPage(c.req.path) ? pageHeaders : apiHeaders)(c, next));
  app.use('*', async (c, next) => {
    await next();
    if (c.req.path.startsWith('/v1/') || c.req.path === '/account' || c.req.path.startsWith('/account/')) c.header('Cache-Control', 'no-store');
  });
  app.use('*', async (c, next) => {
    c.set('deps', deps);
    const started = performance.now();
    await next();
    // Route patterns, never raw URLs: query strings can carry one-time tokens, paths carry ids.
    // A request no route matched has the pattern of the last middleware it passed ('*', '/v1/*').
    const route = routePath(c);
    const ms = performance.now() - started;
    deps.log.info({ requestId: c.var.requestId, method: c.req.method, route, status: c.res.status, ms: Math.round(ms) }, 'request');
    metrics.observeHttp({ method: c.req.method, route, status: c.res.status }, ms / 1000);
  });
  const jsonTooLarge = (c: Context) => problem(c, 413, 'payload-too-large', `Request bodies are limited to ${JSON_BODY_LIMIT} bytes.`);
  const jsonBodyLimit = bodyLimit({ maxSize: JSON_BODY_LIMIT, onError: jsonTooLarge });
  app.use('/v1/*', async (c, next) => {
    if (c.req.header('content-type')?.toLowerCase().startsWith('multipart/form-data')) return next();
    // No body to limit (the Node adapter gives GET and HEAD none).
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // A Content-Length without chunking decides alone: Node's parser ends the body there. Only a
    // chunked body is counted as it streams (hono's bodyLimit) — which first turns the request
    // into a web Request with a stream, a cost every filing would otherwise pay (issue 15).
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) return Number.parseInt(length, 10) > JSON_BODY_LIMIT ? jsonTooLarge(c) : next();
    return jsonBodyLimit(c, next);
  });
  app.use(
    '/codec/*',
    bodyLimit({ maxSize: CODEC_BODY_LIMIT, onError: (c) => problem(c, 413, 'payload-too-large', `Codec requests are limited to ${CODEC_BODY_LIMIT} bytes.`) }),
  );
  // Characters Postgres refuses (NUL, lone surrogates) answer 400 naming the field, once for every route.
  app.use('*', async (c, next) => {
    const refused = (field: string, where: 'body' | 'query' | 'param') =>
      problem(c, 400, 'bad-request', `${field} contains a character that cannot be stored (NUL or an unpaired surrogate).`, {
        errors: [{ field, in: where, message: 'contains a character that cannot be stored' }],
      });
    let pathname: string;
    try {
      pathname = decodeURIComponent(c.req.path);
    } catch {
      return problem(c, 400, 'bad-request', 'The path is not valid percent-encoded UTF-8.', { errors: [{ field: '(path)', in: 'param', message: 'invalid encoding' }] });
    }
    if (hasRefusedCharacter(pathname)) return refused('(path)', 'param');
    for (const [key, values] of Object.entries(c.req.queries())) {
      if (hasRefusedCharacter(key) || values.some(hasRefusedCharacter)) return refused(key, 'query');
    }
    if (/^application\/([\w.+-]*\+)?json/i.test(c.req.header('content-type') ?? '') && c.req.method !== 'GET') {
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch {
        return next(); // the route's validator answers malformed-json
      }
      const field = findRefusedString(body);
      if (field) return refused(field, 'body');
    }
    return next();
  });
  app.use('/v1/*', authenticate);
  app.use('/v1/*', idempotency);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'A staff token (role admin, privacy_officer or support) or a customer token from /v1/auth/login.',
  });

  app.route('/', healthRoutes());
  app.route('/', metricsRoutes(metrics));
  app.route('/', docsRoutes());
  app.route('/v1', staffTokenRoutes());
  app.route('/v1', systemCheckRoutes());
  app.route('/v1', clientRoutes());
  app.route('/v1', callMessageRoutes());
  app.route('/v1', disclosureRoutes());
  app.route('/v1', transferRoutes());
  app.route('/v1', recordingRoutes());
  app.route('/v1', disputeRoutes());
  app.route('/v1', retentionRoutes());
  app.route('/v1', auditRoutes());
  app.route('/v1', customerRoutes());
  app.route('/v1', authRoutes());
  app.route('/v1', requestRoutes());
  app.route('/v1', exportRoutes());
  app.route('/v1', policyRoutes());
  app.route('/v1', statsRoutes());
  app.route('/', codecRoutes());
  app.route('/', accountRoutes());
  app.route('/', siteRoutes());

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'TopCall privacy back office',
      version: '1.0.0',
      description:
        'Every promise of the TopCall privacy policy as a durable workflow. Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: deps.config.PUBLIC_URL }],
  });

  app.notFound((c) => problem(c, 404, 'not-found', `No route for ${c.req.method} ${c.req.path}.`));

  app.onError((err, c) => {
    if (err instanceof AppError) {
      if (err.status === 401) c.header('WWW-Authenticate', 'Bearer realm="privacy-backoffice"');
      return problem(c, err.status, err.code, err.detail, err.extra);
    }
    if (err instanceof QuotaExceededError) return quotaExceeded(c, err.kind, err.callerKind, err.retryAfterSeconds);
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      if (status === 400 && /json/i.test(err.message)) return problem(c, 400, 'malformed-json', 'The request body could not be parsed as JSON.');
      if (status === 415) return problem(c, 415, 'unsupported-media-type', 'Send the body as application/json.');
      if (status === 413) return problem(c, 413, 'payload-too-large', err.message);
      return problem(c, status, status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'bad-request', err.message);
    }
    if (err instanceof WorkflowNotFoundError) return problem(c, 404, 'not-found', 'No such process.');
    if (err instanceof WorkflowExecutionAlreadyStartedError) return problem(c, 409, 'conflict', 'That process already exists.');
    if (err instanceof WorkflowUpdateFailedError) {
      // A process that refused a change (its validator, or a closed run): the client's 4xx, never a 500.
      const mapped = updateFailureToAppError(err);
      if (mapped instanceof AppError) return problem(c, mapped.status, mapped.code, mapped.detail, mapped.extra);
      return problem(c, 409, 'conflict', 'The process refused this change in its current state.');
    }
    // Client-caused database refusals are the client's 4xx, once, here (issue 11): a race on a
    // unique key, text Postgres cannot store (NUL), a value out of range.
    const sqlState = (err as { code?: unknown }).code;
    if (err.name === 'PostgresError' && typeof sqlState === 'string') {
      if (sqlState === '23505') return problem(c, 409, 'conflict', 'That already exists.');
      if (['22P02', '22021', '22P05', '22008', '22007', '22003', '22001', '54000'].includes(sqlState)) {
        return problem(c, 400, 'bad-request', `A value in the request cannot be stored (SQLSTATE ${sqlState}); check for NUL characters, out-of-range dates and numbers.`);
      }
    }
    // Class, codes and stack frames only, causes included (the logger's err serializer, issue 12):
    // driver messages and stack headers quote the data that failed.
    deps.log.error({ requestId: c.var.requestId, err }, 'unhandled error');
    return problem(c, 500, 'internal', 'Something went wrong on our side; the request id identifies it in our logs.');
  });

  return app;
}

export type App = ReturnType<typeof createApp>;
