import path from 'node:path';
import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access } from '../auth';
import { AppError, problemResponse } from '../problem';
import { hashToken } from '../../db/access-tokens';
import { recordInLedger } from '../../db/audit-ledger';
import { personKeysFor } from '../../db/person-keys';
import { openFile } from '../../lib/at-rest';
import type { ApiDeps } from '../context';

/**
 * An access export streamed from DATA_DIR: the bearer link's answer and the account page's alike.
 * The file is sealed with the person's data key (issue 12); the zip itself is what is served.
 */
export async function exportDownload(deps: ApiDeps, pkg: { fileKey: string; bytes: number; sha256: string }): Promise<Response> {
  const stream = await openFile(deps.keys ?? personKeysFor(deps.sql, deps.config), path.join(deps.config.DATA_DIR, pkg.fileKey));
  return new Response(Readable.toWeb(stream) as ReadableStream, {
    status: 200,
    headers: {
      'content-type': 'application/zip',
      'content-length': String(pkg.bytes),
      'content-disposition': 'attachment; filename="topcall-data-export.zip"',
      'cache-control': 'no-store',
      'x-content-sha256': pkg.sha256,
    },
  });
}

export function exportRoutes() {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/exports/{token}',
      ...access.linkToken(),
      tags: ['requests'],
      summary: 'Download an access export (the link from the answer email; it expires)',
      request: { params: z.object({ token: z.string().regex(/^[\w-]{20,100}$/) }) },
      responses: {
        200: { description: 'the export: a zip with data.json and one CSV per category', content: { 'application/zip': { schema: z.string().openapi({ format: 'binary' }) } } },
        404: problemResponse('unknown link'),
        410: problemResponse('the link has expired, or has been used EXPORT_LINK_MAX_DOWNLOADS times'),
      },
    }),
    async (c) => {
      const { sql, config } = c.var.deps;
      const [pkg] = await sql<{ id: string; fileKey: string; bytes: number; sha256: string; expired: boolean }[]>`
        select id, file_key as "fileKey", bytes::int as bytes, sha256, expires_at <= now() as expired
        from export_packages where token_hash = ${hashToken(c.req.valid('param').token)}`;
      if (!pkg) throw new AppError('not-found', 404, 'This download link is unknown.');
      if (pkg.expired) throw new AppError('gone', 410, 'This download link has expired. File a new access request to get a fresh export.');
      // A link is a bearer secret: it works a few times (a retried download), not for anyone it reaches later.
      const counted = await sql`update export_packages set downloads = downloads + 1 where id = ${pkg.id} and downloads < ${config.EXPORT_LINK_MAX_DOWNLOADS} returning 1`;
      if (!counted.length) throw new AppError('gone', 410, `This download link has been used ${config.EXPORT_LINK_MAX_DOWNLOADS} times and no longer works. File a new access request to get a fresh export.`);
      // Issue 12: the link is the only credential; the ledger keeps that it was used, not by whom.
      await recordInLedger(sql, { actor: { type: 'link', id: null, role: null }, action: 'export.download', outcome: 'done', objectType: 'export', objectId: pkg.id });
      return (await exportDownload(c.var.deps, pkg)) as never;
    },
  );
  return app;
}
