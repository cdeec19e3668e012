import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import { findPolicy, noticeCampaign } from '../db/policies';
import { policyNoticeEmail } from '../lib/email-templates';

export interface PolicyDeps {
  sql: Sql;
  mailer: Mailer;
  config: { MAIL_FROM: string; PUBLIC_URL: string };
}

export interface NoticeBatchResult {
  /** The last customer id the pass has enqueued; null in a catch-up pass. */
  cursor: string | null;
  sent: number;
  failed: number;
  done: boolean;
}

/** A 5xx reply is the receiver's final word; anything else (4xx, no connection) is worth a retry. */
const isPermanent = (err: unknown) => {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
};

export function createPolicyActivities(deps: PolicyDeps) {
  const domainOf = (mailFrom: string) => /@([^>\s]+)>?\s*$/.exec(mailFrom)?.[1] ?? 'topcall.dk';

  /** Sends the campaign's pending notices, at most `concurrency` at a time; each is marked the moment SMTP accepts it. */
  async function sendPending(campaign: string, limit: number, concurrency: number): Promise<{ sent: number; failed: number; seen: number }> {
    const rows = await deps.sql<{ key: string; recipient: string; subject: string; textBody: string; messageId: string }[]>`
      select key, recipient, subject, text_body as "textBody", message_id as "messageId" from email_outbox
      where campaign = ${campaign} and status = 'pending' order by key limit ${limit}`;
    let next = 0;
    let sent = 0;
    let failed = 0;
    let temporary: unknown;
    // Accepted notices are marked sent at once: the first in a flush of its own, and any that
    // SMTP accepts while that flush is in flight in the very next one (one statement for many).
    let accepted: string[] = [];
    let flushing: Promise<void> | undefined;
    const flush = async (): Promise<void> => {
      while (accepted.length) {
        const keys = accepted;
        accepted = [];
        await deps.sql`update email_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = null where key = any(${keys})`;
      }
    };
    const markSent = (key: string) => {
      accepted.push(key);
      flushing ??= flush().finally(() => (flushing = undefined));
    };
    await Promise.all(
      Array.from({ length: Math.min(concurrency, rows.length) }, async () => {
        while (next < rows.length && !temporary) {
          const row = rows[next++]!;
          try {
            await deps.mailer.send({ from: deps.config.MAIL_FROM, to: row.recipient, subject: row.subject, text: row.textBody, messageId: row.messageId });
            markSent(row.key);
            sent++;
          } catch (err) {
            const message = String((err as Error).message).slice(0, 300);
            if (isPermanent(err)) {
              await deps.sql`update email_outbox set status = 'failed', attempts = attempts + 1, last_error = ${message} where key = ${row.key}`;
              failed++;
            } else {
              await deps.sql`update email_outbox set attempts = attempts + 1, last_error = ${message} where key = ${row.key}`;
              temporary = err;
            }
          }
        }
      }),
    );
    // Whatever was accepted must be marked before the slice reports back.
    while (flushing || accepted.length) await (flushing ?? flush());
    // SMTP is down or busy: stop here; the activity's retry (with backoff) resumes with what is still pending.
    if (temporary) throw ApplicationFailure.retryable(`SMTP refused for now: ${String((temporary as Error).message).slice(0, 200)}`, 'SmtpTemporaryFailure');
    return { sent, failed, seen: rows.length };
  }

  return {
    /**
     * One slice of a notice campaign: enqueue the next page of persons as outbox rows (one per
     * version and person, so nobody is enqueued twice), then send what is pending. With
     * `cursor: null` it is a catch-up pass over everyone still without a notice (people who
     * registered meanwhile). Returns when the time budget is spent or nothing is left.
     */
    async sendPolicyNotices(input: { version: string; cursor: string | null; batchSize: number; concurrency: number; timeBudgetMs: number }): Promise<NoticeBatchResult> {
      const policy = await findPolicy(deps.sql, input.version);
      if (!policy) throw ApplicationFailure.nonRetryable('no such policy version', 'PolicyNotFound');
      const context = Context.current();
      const campaign = noticeCampaign(input.version);
      const link = `${deps.config.PUBLIC_URL}/v1/policies/${encodeURIComponent(input.version)}/text`;
      const render = (locale: 'da' | 'en') => policyNoticeEmail({ locale, version: policy.version, summary: policy.summary, effectiveAt: policy.effectiveAt.toISOString(), link });
      const [da, en] = [render('da'), render('en')];
      const domain = domainOf(deps.config.MAIL_FROM);

      /** Enqueues the next page of persons; the Message-ID is messageIdFor(key), computed in SQL (a test holds them equal). */
      const enqueue = async (after: string | null) => {
        const [page] = await deps.sql<{ last: string | null; n: number }[]>`
          with page as (
            select c.id, c.email, c.locale from customers c
            where c.status = 'active' and c.email is not null
              ${after === null
                ? deps.sql`and not exists (select 1 from email_outbox o where o.key = ${campaign} || ':' || c.id)`
                : deps.sql`and c.id > ${after}::uuid`}
            order by c.id limit ${input.batchSize}
          ), enqueued as (
            insert into email_outbox (key, message_id, recipient, category, subject, text_body, campaign)
            select ${campaign} || ':' || p.id, '<' || left(encode(sha256(convert_to(${campaign} || ':' || p.id, 'UTF8')), 'hex'), 40) || '@' || ${domain} || '>',
                   p.email, 'service',
                   case when p.locale = 'en' then ${en.subject} else ${da.subject} end,
                   case when p.locale = 'en' then ${en.text} else ${da.text} end,
                   ${campaign}
            from page p
            on conflict (key) do nothing
          )
          select max(id::text) as last, count(*)::int as n from page`;
        return page!;
      };

      let cursor = input.cursor;
      const result: NoticeBatchResult = { cursor, sent: 0, failed: 0, done: false };
      const started = Date.now();
      let nextPage = enqueue(cursor);
      for (;;) {
        const page = await nextPage;
        if (input.cursor !== null && page.last) cursor = page.last;
        // The next page is enqueued while this one is sent, so the SMTP lanes never wait for it.
        const more = page.n > 0;
        nextPage = more ? enqueue(cursor) : Promise.resolve({ last: null, n: 0 });
        const { sent, failed, seen } = await sendPending(campaign, input.batchSize, input.concurrency).catch(async (err: unknown) => {
          await nextPage.catch(() => undefined);
          throw err;
        });
        result.sent += sent;
        result.failed += failed;
        result.cursor = cursor;
        context.heartbeat({ cursor });
        if (!more && seen === 0) {
          await nextPage;
          return { ...result, done: true };
        }
        if (Date.now() - started > input.timeBudgetMs) {
          await nextPage; // its rows are committed; the next slice sends them
          return result;
        }
      }
    },

    /** Gives permanently failed notices another chance (a mailbox may be back). */
    async retryFailedNotices(input: { version: string }): Promise<number> {
      const rows = await deps.sql`update email_outbox set status = 'pending' where campaign = ${noticeCampaign(input.version)} and status = 'failed' returning key`;
      return rows.length;
    },

    /** At the effective date: this version becomes the one in force; earlier ones are superseded. */
    async makePolicyCurrent(input: { version: string }): Promise<void> {
      await deps.sql.begin(async (tx) => {
        const [p] = await tx<{ effectiveAt: Date }[]>`select effective_at as "effectiveAt" from policy_versions where version = ${input.version} for update`;
        if (!p) throw ApplicationFailure.nonRetryable('no such policy version', 'PolicyNotFound');
        await tx`update policy_versions set status = 'superseded' where status = 'current' and version <> ${input.version} and effective_at <= ${p.effectiveAt}`;
        await tx`update policy_versions set status = 'current', became_current_at = coalesce(became_current_at, now()) where version = ${input.version}`;
      });
    },
  };
}
