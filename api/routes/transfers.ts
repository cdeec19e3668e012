import { createPublicKey, randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { createRouter } from '../router';
import { commitAndStart, idFor } from '../start';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse, type FieldError } from '../problem';
import { boundedTimestamp, personName } from '../schemas';
import { updateFailureToAppError } from '../temporal-errors';
import type { AppEnv } from '../context';
import { hashToken } from '../../db/access-tokens';
import { addCalendarDuration, fixedDurationMs } from '../../lib/durations';
import { transferWorkflowId } from '../../workflows/ids';
import { acknowledgedSignal, acknowledgementMismatchSignal, approveTransferUpdate, endTransferUpdate, type businessTransfer } from '../../workflows/business-transfer';
import { deletePackageFiles, transferSigningKey } from '../../activities/transfer-package';
import { publicKeyFingerprint } from '../../lib/transfer-package';

const NewTransfer = z
  .strictObject({
    acquirer: z.strictObject({
      name: personName(),
      email: z.email().max(254),
      publicKey: z.string().min(100).max(20_000).openapi({ description: 'the acquirer’s RSA public key, PEM, at least 3072 bits: the package is encrypted for it' }),
    }),
    scope: z.union([z.strictObject({ all: z.literal(true) }), z.strictObject({ clientIds: z.array(z.uuid()).min(1).max(1000) })]),
    legalBasis: z.enum(['merger', 'acquisition', 'bankruptcy']),
    handoverAt: boundedTimestamp().openapi({ description: 'at least TRANSFER_NOTICE_PERIOD from now: every affected person is told before' }),
    afterHandover: z.enum(['keep', 'erase']).openapi({ description: 'what TopCall does with its copy once the acquirer has acknowledged the package' }),
  })
  .openapi('NewTransfer');

const TransferView = z
  .object({
    id: z.uuid(),
    status: z.string(),
    legalBasis: z.string(),
    handoverAt: z.iso.datetime(),
    afterHandover: z.string(),
    approvals: z.number().int(),
    inventory: z.unknown().nullable(),
    excluded: z.unknown().nullable(),
    progress: z.record(z.string(), z.unknown()),
    package: z
      .object({ manifestSha256: z.string(), files: z.number().int(), bytes: z.number().int(), signerKeySha256: z.string().nullable(), downloads: z.number().int(), firstDownloadedAt: z.iso.datetime().nullable() })
      .optional(),
    acknowledgedAt: z.iso.datetime().optional(),
    endedAt: z.iso.datetime().optional(),
    endReason: z.enum(['cancelled', 'rejected']).optional(),
    outcome: z.record(z.string(), z.unknown()).optional().openapi({ description: 'for a cancelled or rejected transfer: what was and was not handed over' }),
  })
  .openapi('Transfer');

const Params = z.object({ id: z.uuid() });
const TokenQuery = z.strictObject({ token: z.string().regex(/^[\w-]{20,100}$/).optional() });
const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('role not allowed') };

/** The acquirer's one-time secret from the emailed link (`?token=`), compared by hash. */
async function requireAcquirer(c: Context<AppEnv>, id: string, token: string | undefined) {
  if (!token) throw new AppError('unauthorized', 401, 'This needs the token from the link TopCall emailed the acquirer (?token=…).');
  const [row] = await c.var.deps.sql<{ hash: Buffer | null; fileKey: string | null; manifest: string | null; acknowledgedAt: Date | null }[]>`
    select acquirer_token_hash as hash, package_file_key as "fileKey", manifest_sha256 as manifest, acknowledged_at as "acknowledgedAt" from transfers where id = ${id}`;
  if (!row?.hash || !timingSafeEqual(row.hash, hashToken(token))) throw new AppError('not-found', 404, 'No package for that link.');
  return row;
}

export function transferRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/transfers',
      tags: ['transfers'],
      summary: 'D8: start a business transfer (merger, acquisition, bankruptcy) as the workflow transfer:{id}',
      description:
        'Two privacy officers or admins other than the creator must approve it within TRANSFER_APPROVAL_TIMEOUT or it lapses. Clients whose contract forbids transfer (D6) and persons who restricted processing (Art. 18) are left out and listed. Everyone handed over is told before handoverAt.',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { body: { required: true, content: { 'application/json': { schema: NewTransfer } } } },
      responses: {
        202: { description: 'awaiting approval', content: { 'application/json': { schema: z.object({ id: z.uuid(), status: z.literal('awaiting_approval') }) } } },
        422: problemResponse('invalid body, a weak or invalid key, unknown clients, or too little notice'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql, temporal, config } = c.var.deps;
      const body = c.req.valid('json');
      const errors: FieldError[] = [];
      try {
        const key = createPublicKey(body.acquirer.publicKey);
        if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 3072) {
          errors.push({ field: 'acquirer.publicKey', in: 'body', message: 'must be an RSA key of at least 3072 bits' });
        }
      } catch {
        errors.push({ field: 'acquirer.publicKey', in: 'body', message: 'is not a PEM public key' });
      }
      const handoverAt = new Date(body.handoverAt);
      const earliest = addCalendarDuration(new Date(), config.TRANSFER_NOTICE_PERIOD);
      if (handoverAt < earliest) errors.push({ field: 'handoverAt', in: 'body', message: `must leave at least TRANSFER_NOTICE_PERIOD (${config.TRANSFER_NOTICE_PERIOD}) for the notices: not before ${earliest.toISOString()}` });
      if ('clientIds' in body.scope) {
        const ids = [...new Set(body.scope.clientIds)];
        const [found] = await sql<{ n: number }[]>`select count(*)::int as n from clients where id = any(${ids}::uuid[])`;
        if (found!.n !== ids.length) errors.push({ field: 'scope.clientIds', in: 'body', message: 'unknown client(s)' });
      }
      if (errors.length) throw new AppError('validation-failed', 422, `${errors.length} problem(s); nothing was started.`, { errors });

      const id = idFor(c, 'transfer', randomUUID);
      const createdBy = (c.var.principal as { tokenId: string }).tokenId;
      const timeoutMs = fixedDurationMs(config.TRANSFER_APPROVAL_TIMEOUT);
      await commitAndStart(
        c.var.deps,
        (tx) => tx`
          insert into transfers (id, acquirer_name, acquirer_email, acquirer_public_key, scope, legal_basis, handover_at, after_handover, created_by)
          values (${id}, ${body.acquirer.name}, ${body.acquirer.email}, ${body.acquirer.publicKey}, ${tx.json(body.scope as never)}, ${body.legalBasis},
                  ${handoverAt}, ${body.afterHandover}, ${createdBy})
          on conflict (id) do nothing`,
        {
          workflowId: transferWorkflowId(id),
          workflowType: 'businessTransfer',
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          memo: { legalBasis: body.legalBasis, handoverAt: handoverAt.toISOString(), afterHandover: body.afterHandover },
          args: [
            {
              transferId: id,
              createdBy,
              handoverAt: handoverAt.toISOString(),
              approvalReminderAt: new Date(Date.now() + timeoutMs / 2).toISOString(),
              approvalDeadline: new Date(Date.now() + timeoutMs).toISOString(),
              afterHandover: body.afterHandover,
              acknowledgeWithinMs: fixedDurationMs(config.TRANSFER_ACK_TIMEOUT),
            } satisfies Parameters<typeof businessTransfer>[0],
          ],
        },
      );
      return c.json({ id, status: 'awaiting_approval' as const }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/transfers/signing-key',
      ...access.public(),
      tags: ['transfers'],
      summary: 'TopCall’s public key that signs every transfer manifest (Ed25519, PEM) and its SHA-256 fingerprint, for npm run verify-transfer --signer',
      responses: { 200: { description: 'the public key', content: { 'application/json': { schema: z.object({ alg: z.literal('Ed25519'), publicKeyPem: z.string(), sha256: z.string() }) } } } },
    }),
    async (c) => {
      const { publicKey } = await transferSigningKey(c.var.deps.sql);
      return c.json({ alg: 'Ed25519' as const, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, sha256: publicKeyFingerprint(publicKey) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/transfers/{id}/approvals',
      tags: ['transfers'],
      summary: 'Approve a transfer: two distinct privacy officers or admins, neither the creator (four eyes)',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { params: Params },
      responses: {
        200: { description: 'approval counted', content: { 'application/json': { schema: z.object({ status: z.string(), approvals: z.number().int() }) } } },
        403: problemResponse('the creator, or not a privacy officer or admin'),
        404: problemResponse('no such transfer'),
        409: problemResponse('already approved by this approver, or no longer awaiting approval'),
        401: problemResponse('no or unknown token'),
      },
    }),
    async (c) => {
      const { sql, temporal } = c.var.deps;
      const { id } = c.req.valid('param');
      const principal = c.var.principal as { tokenId: string };
      const [t] = await sql<{ createdBy: string; status: string }[]>`select created_by as "createdBy", status from transfers where id = ${id}`;
      if (!t) throw new AppError('not-found', 404, 'No transfer with that id.');
      if (t.status !== 'awaiting_approval') throw new AppError('conflict', 409, `The transfer is ${t.status}, not awaiting approval.`);
      if (t.createdBy === principal.tokenId) throw new AppError('forbidden', 403, 'The creator of a transfer cannot approve it (four eyes).');
      try {
        const state = await temporal.workflow.getHandle(transferWorkflowId(id)).executeUpdate(approveTransferUpdate, { args: [{ approverTokenId: principal.tokenId }] });
        return c.json({ status: state.status, approvals: state.approvals }, 200);
      } catch (err) {
        throw updateFailureToAppError(err);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/transfers/{id}',
      tags: ['transfers'],
      summary: 'A transfer: status, inventory, what was excluded and why, progress, the package and its acknowledgement',
      security: staffSecurity,
      ...access.staff(),
      request: { params: Params },
      responses: { 200: { description: 'the transfer', content: { 'application/json': { schema: TransferView } } }, 404: problemResponse('no such transfer'), ...authErrors },
    }),
    async (c) => {
      const [t] = await c.var.deps.sql<
        {
          id: string;
          status: string;
          legalBasis: string;
          handoverAt: Date;
          afterHandover: string;
          approvals: number;
          inventory: unknown;
          excluded: unknown;
          progress: Record<string, unknown>;
          manifestSha256: string | null;
          files: number | null;
          bytes: string | null;
          acknowledgedAt: Date | null;
          signer: string | null;
          downloads: number;
          firstDownloadedAt: Date | null;
          endedAt: Date | null;
          endReason: 'cancelled' | 'rejected' | null;
          outcome: Record<string, unknown> | null;
        }[]
      >`
        select id, status, legal_basis as "legalBasis", handover_at as "handoverAt", after_handover as "afterHandover",
               (select count(*)::int from transfer_approvals a where a.transfer_id = t.id) as approvals, inventory, excluded, progress,
               manifest_sha256 as "manifestSha256", package_files as files, package_bytes as bytes, acknowledged_at as "acknowledgedAt",
               signer_key_sha256 as signer, downloads, first_downloaded_at as "firstDownloadedAt", ended_at as "endedAt", end_reason as "endReason", outcome
        from transfers t where id = ${c.req.valid('param').id}`;
      if (!t) throw new AppError('not-found', 404, 'No transfer with that id.');
      return c.json(
        {
          id: t.id,
          status: t.status,
          legalBasis: t.legalBasis,
          handoverAt: t.handoverAt.toISOString(),
          afterHandover: t.afterHandover,
          approvals: t.approvals,
          inventory: t.inventory,
          excluded: t.excluded,
          progress: t.progress,
          ...(t.manifestSha256
            ? {
                package: {
                  manifestSha256: t.manifestSha256,
                  files: t.files ?? 0,
                  bytes: Number(t.bytes ?? 0),
                  signerKeySha256: t.signer,
                  downloads: t.downloads,
                  firstDownloadedAt: t.firstDownloadedAt?.toISOString() ?? null,
                },
              }
            : {}),
          ...(t.acknowledgedAt ? { acknowledgedAt: t.acknowledgedAt.toISOString() } : {}),
          ...(t.endedAt ? { endedAt: t.endedAt.toISOString(), endReason: t.endReason ?? undefined } : {}),
          ...(t.outcome ? { outcome: t.outcome } : {}),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/transfers/{id}/package',
      ...access.linkToken(),
      tags: ['transfers'],
      summary: 'The acquirer downloads the encrypted package (the token from its email link)',
      request: { params: Params, query: TokenQuery },
      responses: {
        200: {
          description:
            'the package: one tar with key.json (the data key wrapped with RSA-OAEP-SHA256 for the acquirer), signer.pem, per client JSON Lines per category and the audio (each file AES-256-GCM), manifest.json and manifest.sig (see docs/business-transfer.md; check it with npm run verify-transfer)',
          content: { 'application/x-tar': { schema: z.string().openapi({ format: 'binary' }) } },
        },
        401: problemResponse('no token'),
        404: problemResponse('unknown link, or revoked (the transfer was cancelled or rejected)'),
        410: problemResponse('acknowledged: TopCall no longer keeps the package'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const row = await requireAcquirer(c, id, c.req.valid('query').token);
      if (row.acknowledgedAt || !row.fileKey || !row.manifest) throw new AppError('gone', 410, 'The package was acknowledged and is no longer kept.');
      const file = path.join(c.var.deps.config.DATA_DIR, row.fileKey);
      const stream = createReadStream(file);
      try {
        await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
      } catch {
        throw new AppError('gone', 410, 'The package is no longer kept.');
      }
      // The register must know whether the acquirer ever had it (a cancellation withdraws the disclosure only if not).
      await c.var.deps.sql`update transfers set downloads = downloads + 1, first_downloaded_at = coalesce(first_downloaded_at, now()) where id = ${id}`;
      return new Response(Readable.toWeb(stream) as ReadableStream, {
        status: 200,
        headers: { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="topcall-transfer-${id}.tar"`, 'cache-control': 'no-store' },
      }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/transfers/{id}/acknowledgement',
      ...access.linkToken(),
      tags: ['transfers'],
      summary: 'The acquirer confirms receipt with the manifest’s SHA-256: 200 when it matches, 409 when not',
      request: { params: Params, query: TokenQuery, body: { required: true, content: { 'application/json': { schema: z.strictObject({ manifestSha256: z.string().regex(/^[0-9a-f]{64}$/) }) } } } },
      responses: {
        200: { description: 'acknowledged', content: { 'application/json': { schema: z.object({ acknowledgedAt: z.iso.datetime() }) } } },
        401: problemResponse('no token'),
        404: problemResponse('unknown link'),
        409: problemResponse('the hash does not match the manifest: the package did not arrive intact (staff are told)'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { sql, temporal } = c.var.deps;
      const row = await requireAcquirer(c, id, c.req.valid('query').token);
      if (!row.manifest) throw new AppError('conflict', 409, 'The package has not been built yet.');
      if (c.req.valid('json').manifestSha256 !== row.manifest) {
        await sql`update transfers set ack_mismatches = ack_mismatches + 1 where id = ${id}`;
        await temporal.workflow.getHandle(transferWorkflowId(id)).signal(acknowledgementMismatchSignal);
        throw new AppError('conflict', 409, 'That is not the manifest’s SHA-256: the package did not arrive intact. Download it again; TopCall’s staff have been told.');
      }
      const [ack] = await sql<{ at: Date }[]>`
        update transfers set acknowledged_at = coalesce(acknowledged_at, now()) where id = ${id} returning acknowledged_at as at`;
      await temporal.workflow.getHandle(transferWorkflowId(id)).signal(acknowledgedSignal);
      // The acquirer has it: TopCall's encrypted copy of the package goes (what TopCall keeps of its own data is afterHandover's).
      await deletePackageFiles(c.var.deps, id);
      return c.json({ acknowledgedAt: ack!.at.toISOString() }, 200);
    },
  );

  const Ending = z.object({ id: z.uuid(), status: z.string(), ending: z.enum(['cancelled', 'rejected']) }).openapi('TransferEnding');
  const endResponses = {
    202: { description: 'recorded: the workflow revokes the link, deletes the package and tells everyone concerned; GET /v1/transfers/:id shows the outcome', content: { 'application/json': { schema: Ending } } },
    404: problemResponse('no such transfer, or unknown link'),
    409: problemResponse('already acknowledged, completed, lapsed or ended'),
  };
  const endTransfer = async (c: Context<AppEnv>, id: string, end: { reason: 'cancelled' | 'rejected'; by: string }) => {
    const [t] = await c.var.deps.sql<{ status: string; acknowledgedAt: Date | null }[]>`select status, acknowledged_at as "acknowledgedAt" from transfers where id = ${id}`;
    if (!t) throw new AppError('not-found', 404, 'No transfer with that id.');
    // A finished run takes no more updates: answer from the record.
    if (t.acknowledgedAt || ['lapsed', 'erasing', 'completed', 'cancelled', 'rejected'].includes(t.status)) {
      throw new AppError('conflict', 409, `The transfer is ${t.acknowledgedAt ? 'acknowledged' : t.status}: it can no longer be ${end.reason}.`);
    }
    try {
      const state = await c.var.deps.temporal.workflow.getHandle(transferWorkflowId(id)).executeUpdate(endTransferUpdate, { args: [end] });
      return c.json({ id, status: state.status, ending: end.reason }, 202);
    } catch (err) {
      throw updateFailureToAppError(err);
    }
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/transfers/{id}/cancellation',
      tags: ['transfers'],
      summary: 'Cancel a transfer before the acquirer has acknowledged it: the link is revoked, the package deleted, and the register says what was handed over',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { params: Params },
      responses: { ...endResponses, 401: problemResponse('no or unknown token'), 403: problemResponse('not a privacy officer or admin') },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return endTransfer(c, id, { reason: 'cancelled', by: (c.var.principal as { tokenId: string }).tokenId });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/transfers/{id}/rejection',
      ...access.linkToken(),
      tags: ['transfers'],
      summary: 'The acquirer rejects the package it was sent (the token from its email link): the same undoing as a cancellation',
      request: { params: Params, query: TokenQuery },
      responses: { ...endResponses, 401: problemResponse('no token') },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      await requireAcquirer(c, id, c.req.valid('query').token);
      return endTransfer(c, id, { reason: 'rejected', by: 'acquirer' });
    },
  );

  return app;
}
