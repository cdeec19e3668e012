import { quota } from '../quota';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import { boundedTimestamp } from '../schemas';
import { createRouter } from '../router';
import { access, ledgerActorOf, requireStaff, staffSecurity } from '../auth';
import { appendLedger, recordInLedger } from '../../db/audit-ledger';
import { AppError, fieldErrors, problemResponse, type FieldError } from '../problem';
import { parseRecordingUpload } from '../recording-upload';
import { findClient } from '../../db/clients';
import { findCustomer } from '../../db/customers';
import { findRecording, insertRecording, listRecordings, recordingRestricted, statusOf, type RecordingRow } from '../../db/recordings';
import { receiptFor, type Receipt } from '../../db/receipts';
import { addCalendarDuration } from '../../lib/durations';
import { audioKeyFor } from '../../lib/recording-store';
import { phoneNumberSchema } from '../../lib/phone';
import { countCall } from '../../db/call-messages';

/** Telephony clocks drift a little; a recording further in the future than this is refused. */
const CLOCK_SKEW_MS = 5 * 60_000;

const UploadFields = z.strictObject({
  clientId: z.uuid(),
  recordedAt: boundedTimestamp(),
  durationSeconds: z.coerce.number({ message: 'must be a whole number of seconds' }).int().min(0).max(86_400),
  customerId: z.uuid().optional(),
  callerNumber: phoneNumberSchema().optional(),
});

const UploadForm = z
  .object({
    clientId: z.uuid(),
    recordedAt: z.iso.datetime({ offset: true }),
    durationSeconds: z.number().int().min(0).max(86_400),
    customerId: z.uuid().optional(),
    callerNumber: z.string().optional(),
    audio: z.string().openapi({ format: 'binary', description: 'the call audio (audio/* or application/octet-stream)' }),
  })
  .openapi('RecordingUpload');

const ReceiptSchema = z
  .object({
    seq: z.number().int(),
    recordingId: z.uuid(),
    clientId: z.uuid(),
    recordedAt: z.iso.datetime(),
    deleteAfter: z.iso.datetime(),
    deletedAt: z.iso.datetime(),
    audioSha256: z.string(),
    reason: z.enum(['retention', 'dispute_resolved', 'erasure', 'objection']),
    workflowId: z.string(),
    runId: z.string(),
    disputeId: z.uuid().nullable(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('DeletionReceipt');

const RecordingSchema = z
  .object({
    id: z.uuid(),
    clientId: z.uuid(),
    status: z.enum(['retained', 'held', 'deleted']),
    recordedAt: z.iso.datetime(),
    deleteAfter: z.iso.datetime(),
    durationSeconds: z.number().int(),
    sha256: z.string(),
    holds: z.array(z.uuid()).openapi({ description: 'open disputes holding this recording' }),
    deletedAt: z.iso.datetime().optional(),
    receipt: ReceiptSchema.optional(),
  })
  .openapi('Recording');

const receiptJson = (r: Receipt) => ({
  ...r,
  recordedAt: r.recordedAt.toISOString(),
  deleteAfter: r.deleteAfter.toISOString(),
  deletedAt: r.deletedAt.toISOString(),
});

const recordingJson = (r: RecordingRow, receipt?: Receipt) => ({
  id: r.id,
  clientId: r.clientId,
  status: statusOf(r),
  recordedAt: r.recordedAt.toISOString(),
  deleteAfter: r.deleteAfter.toISOString(),
  durationSeconds: r.durationSeconds,
  sha256: r.audioSha256,
  holds: r.holds,
  ...(r.deletedAt ? { deletedAt: r.deletedAt.toISOString() } : {}),
  ...(receipt ? { receipt: receiptJson(receipt) } : {}),
});

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('not staff') };

export function recordingRoutes() {
  const app = createRouter();

  // Documented here, parsed by hand below: the audio streams to the store instead of into memory.
  const uploadRoute = createRoute({
    method: 'post',
    path: '/recordings',
    tags: ['recordings'],
    // Streamed multipart: the guard is requireStaff() on app.post below, the declaration here.
    'x-access': 'staff',
    summary: 'Ingest a call recording (D4): stored with its SHA-256 and a deletion deadline',
    description:
      '`deleteAfter` is `recordedAt` + RECORDING_RETENTION in calendar terms in Europe/Copenhagen (31 Jan + P3M = 30 Apr). ' +
      'An unknown client, a missing or empty audio part, a future `recordedAt`, an unknown field or an oversize upload is refused and nothing is stored.',
    security: staffSecurity,
    request: { body: { required: true, content: { 'multipart/form-data': { schema: UploadForm } } } },
    responses: {
      201: {
        description: 'stored',
        content: { 'application/json': { schema: z.object({ id: z.uuid(), deleteAfter: z.iso.datetime(), sha256: z.string() }) } },
      },
      413: problemResponse('audio larger than RECORDING_MAX_BYTES'),
      415: problemResponse('not multipart/form-data'),
      422: problemResponse('invalid fields, unknown client, missing audio or a future recordedAt'),
      ...authErrors,
    },
  });
  app.openAPIRegistry.registerPath(uploadRoute);
  app.post('/recordings', requireStaff(), quota('uploads'), async (c) => {
    const { sql, store, config } = c.var.deps;
    const upload = await parseRecordingUpload(c.req.raw, store, config.RECORDING_MAX_BYTES);
    try {
      const errors: FieldError[] = upload.unexpected.map((name) => ({ field: name, in: 'form', message: 'unknown field' }));
      const fields = UploadFields.safeParse(upload.fields);
      if (!fields.success) errors.push(...fieldErrors(fields.error.issues, 'form'));
      if (!upload.audio) errors.push({ field: 'audio', in: 'form', message: 'required: the call audio as a file part' });
      else if (upload.audio.bytes === 0) errors.push({ field: 'audio', in: 'form', message: 'is empty' });
      else if (!/^(audio\/[\w.+-]+|application\/octet-stream)$/i.test(upload.audio.contentType)) {
        errors.push({ field: 'audio', in: 'form', message: 'must be audio/* or application/octet-stream' });
      }
      if (fields.success) {
        if (new Date(fields.data.recordedAt).getTime() > Date.now() + CLOCK_SKEW_MS) {
          errors.push({ field: 'recordedAt', in: 'form', message: 'is in the future' });
        }
        if (!(await findClient(sql, fields.data.clientId))) errors.push({ field: 'clientId', in: 'form', message: 'no such client' });
        if (fields.data.customerId) {
          const customer = await findCustomer(sql, fields.data.customerId);
          if (!customer || customer.clientId !== fields.data.clientId || customer.status !== 'active') {
            errors.push({ field: 'customerId', in: 'form', message: 'no such customer of this client' });
          }
        }
      }
      if (errors.length || !fields.success || !upload.audio) {
        throw new AppError('validation-failed', 422, `${errors.length} field(s) failed validation; nothing was stored.`, { errors });
      }

      const id = randomUUID();
      const recordedAt = new Date(fields.data.recordedAt);
      const deleteAfter = addCalendarDuration(recordedAt, config.RECORDING_RETENTION);
      const audioKey = audioKeyFor(id);
      const staged = upload.audio;
      await staged.commit(audioKey);
      let storedDeleteAfter: Date;
      try {
        // The call counts towards the client's daily statistics (D3) in the same transaction.
        storedDeleteAfter = await sql.begin(async (tx) => {
          const stored = await insertRecording(tx, {
            id,
            clientId: fields.data.clientId,
            customerId: fields.data.customerId,
            callerNumber: fields.data.callerNumber,
            recordedAt,
            durationSeconds: fields.data.durationSeconds,
            deleteAfter,
            audioKey,
            audioSha256: staged.sha256,
            audioBytes: staged.bytes,
            contentType: staged.contentType.toLowerCase(),
          });
          await countCall(tx, fields.data.clientId, recordedAt);
          return stored;
        });
      } catch (err) {
        await store.delete(audioKey); // no audio without its row
        throw err;
      }
      return c.json({ id, deleteAfter: storedDeleteAfter.toISOString(), sha256: upload.audio.sha256 }, 201);
    } catch (err) {
      await upload.audio?.discard();
      throw err;
    }
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/recordings/{id}',
      tags: ['recordings'],
      summary: 'A recording: status, holds, deadline, and its deletion receipt once deleted',
      security: staffSecurity,
      ...access.staff(),
      request: { params: z.object({ id: z.uuid() }) },
      responses: { 200: { description: 'the recording', content: { 'application/json': { schema: RecordingSchema } } }, 404: problemResponse('no such recording'), ...authErrors },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const row = await findRecording(sql, c.req.valid('param').id);
      if (!row) throw new AppError('not-found', 404, 'No recording with that id.');
      const receipt = row.status === 'deleted' ? await receiptFor(sql, row.id) : undefined;
      return c.json(recordingJson(row, receipt), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/recordings/{id}/audio',
      tags: ['recordings'],
      summary: 'The audio; 410 Gone once the recording is deleted; 403 while its person has restricted processing (Art. 18)',
      description:
        'A recording of a person who restricted processing (their account, or a caller number on the restriction list) is stored but not played: a privacy officer may play it with `overrideReason`, which is recorded with who and when.',
      security: staffSecurity,
      ...access.staff(),
      request: {
        params: z.object({ id: z.uuid() }),
        query: z.strictObject({
          overrideReason: z
            .string()
            .trim()
            .min(10)
            .max(500)
            .optional()
            .openapi({ description: 'privacy officer only: why this restricted recording must be played (recorded)' }),
        }),
      },
      responses: {
        200: { description: 'the audio', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
        404: problemResponse('no such recording'),
        410: problemResponse('deleted; the receipt is on the recording'),
        ...authErrors,
        403: problemResponse('role not allowed, or its person has restricted processing and no privacy officer override was given'),
      },
    }),
    async (c) => {
      const { sql, store } = c.var.deps;
      const row = await findRecording(sql, c.req.valid('param').id);
      if (!row) throw new AppError('not-found', 404, 'No recording with that id.');
      if (row.status === 'deleted') throw new AppError('gone', 410, `The recording was deleted at ${row.deletedAt!.toISOString()}; its receipt is at /v1/recordings/${row.id}.`);
      const { overrideReason } = c.req.valid('query');
      const actor = ledgerActorOf(c.var.principal);
      const act = { actor, objectType: 'recording', objectId: row.id } as const;
      const restricted = await recordingRestricted(sql, row.id);
      if (restricted) {
        const principal = c.var.principal as { kind: 'staff'; role: string; tokenId: string };
        if (!overrideReason || (principal.role !== 'privacy_officer' && principal.role !== 'admin')) {
          await recordInLedger(sql, { ...act, action: 'recording.override', outcome: 'refused' });
          throw new AppError(
            'restricted',
            403,
            'The person on this recording has restricted its processing (GDPR Art. 18): it is stored but not played. A privacy officer may play it with overrideReason, which is recorded.',
          );
        }
      }
      const audio = await store.open(row.audioKey);
      // Issue 12: every play of a recording is in the ledger, and an override with it, before a byte goes out.
      await sql.begin(async (tx) => {
        if (restricted) await tx`insert into restriction_overrides (recording_id, actor_token_id, reason) values (${row.id}, ${(c.var.principal as { tokenId: string }).tokenId}, ${overrideReason!})`;
        await appendLedger(tx, [
          ...(restricted ? [{ ...act, action: 'recording.override' as const, outcome: 'done' as const }] : []),
          { ...act, action: 'recording.audio_download', outcome: 'done' },
        ]);
      }).catch((err: unknown) => {
        audio.destroy();
        throw err;
      });
      return new Response(Readable.toWeb(audio) as ReadableStream, {
        status: 200,
        headers: { 'content-type': row.contentType, 'content-length': String(row.audioBytes), 'x-content-sha256': row.audioSha256 },
      }) as never;
    },
  );

  const Cursor = z.string().regex(/^[\w-]+$/).openapi({ description: 'from `nextCursor` of the previous page' });
  app.openapi(
    createRoute({
      method: 'get',
      path: '/recordings',
      tags: ['recordings'],
      summary: 'List recordings by client and status, newest first',
      security: staffSecurity,
      ...access.staff(),
      request: {
        query: z.strictObject({
          clientId: z.uuid().optional(),
          status: z.enum(['retained', 'held', 'deleted']).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          cursor: Cursor.optional(),
        }),
      },
      responses: {
        200: { description: 'a page', content: { 'application/json': { schema: z.object({ items: z.array(RecordingSchema), nextCursor: z.string().nullable() }) } } },
        422: problemResponse('invalid filter'),
        ...authErrors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      let after: { recordedAt: Date; id: string } | undefined;
      if (q.cursor) {
        const [ms, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
        const at = new Date(Number(ms));
        if (!id || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) || !/^\d{1,15}$/.test(ms ?? '') || Number.isNaN(at.getTime())) throw new AppError('validation-failed', 422, 'Invalid cursor.', { errors: [{ field: 'cursor', in: 'query', message: 'invalid' }] });
        after = { recordedAt: new Date(Number(ms)), id };
      }
      const rows = await listRecordings(c.var.deps.sql, { clientId: q.clientId, status: q.status, limit: q.limit, after });
      const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
      const nextCursor = last ? Buffer.from(`${last.recordedAt.getTime()}|${last.id}`).toString('base64url') : null;
      return c.json({ items: rows.map((r) => recordingJson(r)), nextCursor }, 200);
    },
  );

  return app;
}
