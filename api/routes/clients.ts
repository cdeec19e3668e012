import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { CLIENT_RESTRICTIONS, findClient, insertClient } from '../../db/clients';

const NewClient = z
  .strictObject({
    name: z.string().trim().min(1).max(200).openapi({ example: 'Hansen VVS ApS' }),
    restrictions: z
      .array(z.enum(CLIENT_RESTRICTIONS))
      .max(CLIENT_RESTRICTIONS.length)
      .default([])
      .openapi({ description: "D6: limits from the client's contract that the workflows obey" }),
  })
  .openapi('NewClient');

const Client = z
  .object({ id: z.uuid(), name: z.string(), restrictions: z.array(z.enum(CLIENT_RESTRICTIONS)), createdAt: z.iso.datetime() })
  .openapi('Client');

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('not staff') };

export function clientRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/clients',
      tags: ['clients'],
      summary: 'Register a client business (a tenant whose calls TopCall answers)',
      security: staffSecurity,
      ...access.staff('privacy_officer', 'support'),
      request: { body: { required: true, content: { 'application/json': { schema: NewClient } } } },
      responses: { 201: { description: 'created', content: { 'application/json': { schema: z.object({ id: z.uuid() }) } } }, 422: problemResponse('invalid body'), ...authErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await insertClient(c.var.deps.sql, { name: body.name, restrictions: [...new Set(body.restrictions)] });
      return c.json({ id: row.id }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/clients/{id}',
      tags: ['clients'],
      summary: 'A client and its restrictions',
      security: staffSecurity,
      ...access.staff(),
      request: { params: z.object({ id: z.uuid() }) },
      responses: { 200: { description: 'the client', content: { 'application/json': { schema: Client } } }, 404: problemResponse('no such client'), ...authErrors },
    }),
    async (c) => {
      const row = await findClient(c.var.deps.sql, c.req.valid('param').id);
      if (!row) throw new AppError('not-found', 404, 'No client with that id.');
      return c.json({ id: row.id, name: row.name, restrictions: row.restrictions, createdAt: row.createdAt.toISOString() }, 200);
    },
  );

  return app;
}
