import { isPermanentSmtpFailure } from './email';
import { setTimeout } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createSql, type Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import { safeErrorText } from '../lib/safe-error';
import { findPolicy, noticeCampaign, noticeCounts } from '../db/policies';
import { policyNoticeEmail } from '../lib/email-templates';

export interface PolicyDeps {
  sql: Sql;
  mailer: Mailer;
  config: { MAIL_FROM: string; PUBLIC_URL: string; DATABASE_URL: string };
}

export interface NoticeBatchResult {
  /** The last customer id the pass has enqueued; null in a catch-up pass. */
  cursor: string | null;
  sent: number;
  failed: number;
  done: boolean;
  /**
   * The campaign's totals in the outbox after this slice. The per-slice counts above miss what
   * an attempt sent before it failed; these do not. (Absent in results recorded before they existed.)
   */
  totals?: { sent: number; failed: number };
}

const isPermanent = isPermanentSmtpFailure;

/** Advisory-lock class for "one sender per campaign" (the key is the campaign's hash). */
export const CAMPAIGN_LOCK = 7233012;
/** Tries of one coalesced sent-mark before the slice gives up (about 20 s with backoff). */
const MARK_ATTEMPTS = 8;

interface NoticeRow {
  key: string;
  recipient: string;
  subject: string;
  /** Null for rows enqueued before notices were rendered at send time. */
  locale: 'da' | 'en' | null;
  textBody: string | null;
  messageId: string;
}

export function createPolicyActivities(deps: PolicyDeps) {
  const domainOf = (mailFrom: string) => /@([^>\s]+)>?\s*$/.exec(mailFrom)?.[1] ?? 'topcall.dk';

  /**
   * Runs `work` while holding the campaign's advisory lock in a database session of its own. An
   * attempt that Temporal gave up on (its heartbeats stopped reaching the server) may still be
   * alive; it keeps the lock until it finishes or its process dies, so two attempts never send
   * at once. Ending the session releases the lock; if the session is lost first (Postgres
   * restarting), `onLost` is told, since another attempt could now take the lock.
   */
  async function fenced<T>(campaign: string, onLost: (err: Error) => void, work: () => Promise<T>): Promise<T> {
    let holding = false;
    const fence = createSql(deps.config.DATABASE_URL, {
      max: 1,
      idle_timeout: 0,
      onclose: () => {
        if (holding) onLost(new Error('lost the database session that holds the campaign lock'));
      },
    });
    try {
      const [row] = await fence<{ locked: boolean }[]>`select pg_try_advisory_lock(${CAMPAIGN_LOCK}, hashtext(${campaign})) as locked`;
      if (!row!.locked) throw ApplicationFailure.retryable('an earlier attempt is still sending this campaign', 'CampaignBusy');
      holding = true;
      return await work();
    } finally {
      holding = false;
      await fence.end({ timeout: 1 });
    }
  }

  return {
    /**
     * One slice of a notice campaign. A producer enqueues the next page of persons as outbox rows
     * (one per version and person, so nobody is enqueued twice) and fetches them, one page ahead
     * of `concurrency` SMTP lanes that never wait for a page boundary; each notice is marked sent
     * as soon as SMTP accepts it. With `cursor: null` it is a catch-up pass over everyone still
     * without a notice (people who registered meanwhile). Returns when the time budget is spent
     * or nothing is left.
     */
    async sendPolicyNotices(input: { version: string; cursor: string | null; batchSize: number; concurrency: number; timeBudgetMs: number }): Promise<NoticeBatchResult> {
      const policy = await findPolicy(deps.sql, input.version);
      if (!policy) throw ApplicationFailure.nonRetryable('no such policy version', 'PolicyNotFound');
      const context = Context.current();
      const campaign = noticeCampaign(input.version);
      const link = `${deps.config.PUBLIC_URL}/v1/policies/${encodeURIComponent(input.version)}/text`;
      const render = (locale: 'da' | 'en') => policyNoticeEmail({ locale, version: policy.version, summary: policy.summary, effectiveAt: policy.effectiveAt.toISOString(), link });
      const texts = { da: render('da'), en: render('en') };
      const domain = domainOf(deps.config.MAIL_FROM);
      const { batchSize } = input;
      const lanes = Math.max(1, input.concurrency);

      /** Enqueues the next page of persons; the Message-ID is messageIdFor(key), computed in SQL (a test holds them equal). */
      const enqueue = async (after: string | null) => {
        const [page] = await deps.sql<{ last: string | null; n: number }[]>`
          with page as (
            select c.id, c.email, c.locale from customers c
            where c.status = 'active' and c.email is not null
              ${after === null
                ? deps.sql`and not exists (select 1 from email_outbox o where o.key = ${campaign} || ':' || c.id)`
                : deps.sql`and c.id > ${after}::uuid`}
            order by c.id limit ${batchSize}
          ), enqueued as (
            insert into email_outbox (key, message_id, recipient, category, subject, locale, campaign)
            select ${campaign} || ':' || p.id, '<' || left(encode(sha256(convert_to(${campaign} || ':' || p.id, 'UTF8')), 'hex'), 40) || '@' || ${domain} || '>',
                   p.email, 'service',
                   case when p.locale = 'en' then ${texts.en.subject} else ${texts.da.subject} end,
                   case when p.locale = 'en' then 'en' else 'da' end,
                   ${campaign}
            from page p
            on conflict (key) do nothing
          )
          select max(id::text) as last, count(*)::int as n from page`;
        return page!;
      };

      /** Pending rows after `after` in key order (text_body only exists on rows from before send-time rendering). */
      const fetchPending = (after: string) => deps.sql<NoticeRow[]>`
        select key, recipient, subject, locale, text_body as "textBody", message_id as "messageId" from email_outbox
        where campaign = ${campaign} and status = 'pending' and key > ${after} order by key limit ${batchSize}`;

      let cursor = input.cursor;
      let sent = 0;
      let failed = 0;
      let done = false;
      /** Why the slice stops early: SMTP refusing for now, the database failing, or the attempt cancelled. */
      let stop: { reason: 'smtp' | 'database' | 'cancelled'; error: unknown } | undefined;
      const halt = (reason: 'smtp' | 'database' | 'cancelled', error: unknown) => {
        stop ??= { reason, error };
        wake();
        pokeProducer();
      };
      const started = Date.now();
      // Heartbeats say the slice is making progress (a page fetched, a notice sent, a mark retried), at most every 500 ms.
      let lastBeat = 0;
      const beat = () => {
        if (Date.now() - lastBeat < 500) return;
        lastBeat = Date.now();
        context.heartbeat({ cursor });
      };

      // Rows fetched and not yet taken by a lane, in key order; `head` is the next one to take.
      let buffer: NoticeRow[] = [];
      let head = 0;
      let inFlight = 0;
      let producing = true;
      // Idle lanes wait here for anything to change (rows fetched, marks written, a halt) and then look again.
      let wakeLanes: (() => void)[] = [];
      let wakeProducer: (() => void) | undefined;
      const waiting = () => buffer.length - head;
      const wake = () => {
        const idle = wakeLanes;
        wakeLanes = [];
        for (const w of idle) w();
      };
      const pokeProducer = () => {
        const w = wakeProducer;
        wakeProducer = undefined;
        w?.();
      };
      const producerWaits = (until: () => boolean) =>
        new Promise<void>((resolve) => {
          const check = () => (until() ? resolve() : (wakeProducer = check));
          check();
        });

      // Accepted notices are marked sent at once: the first in a flush of its own, and any that
      // SMTP accepts while that flush is in flight in the very next one (one statement for many).
      // No more than `concurrency` may wait for their mark (a lane waits if Postgres is slow),
      // so a crash can catch at most that many accepted and unmarked, plus one per lane past
      // the end of its DATA.
      let accepted: string[] = [];
      let unmarked = 0;
      let flushing: Promise<void> | undefined;
      // A mark that fails (Postgres restarting) stops the sending and is tried again for a while:
      // an accepted notice left unmarked would be sent a second time by the next attempt.
      const flush = async (): Promise<void> => {
        while (accepted.length) {
          const keys = accepted;
          accepted = [];
          for (let attempt = 1; ; attempt++) {
            try {
              await deps.sql`update email_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = null where key = any(${keys})`;
              unmarked -= keys.length;
              wake();
              break;
            } catch (err) {
              halt('database', err);
              if (attempt === MARK_ATTEMPTS) {
                accepted = keys.concat(accepted);
                throw err;
              }
              // Keep telling Temporal this attempt is alive, or a retry would start and send
              // the accepted notices again before they are marked.
              for (let wait = Math.min(250 * 2 ** attempt, 5_000); wait > 0; wait -= 1_000) {
                beat();
                await setTimeout(Math.min(wait, 1_000));
              }
            }
          }
        }
      };
      const markSent = (key: string) => {
        accepted.push(key);
        unmarked++;
        flushing ??= flush()
          .catch(() => undefined) // halted already; the final flush reports it
          .finally(() => (flushing = undefined));
      };
      const settleMarks = async () => {
        while (flushing) await flushing;
        await flush();
      };

      const lane = async () => {
        for (;;) {
          if (stop) return;
          if (waiting() === 0) {
            if (!producing) return;
            await new Promise<void>((resolve) => wakeLanes.push(resolve));
            continue;
          }
          if (unmarked >= lanes) {
            // Postgres is behind: wait for a mark to be written.
            await new Promise<void>((resolve) => wakeLanes.push(resolve));
            continue;
          }
          const row = buffer[head++]!;
          inFlight++;
          try {
            const text = row.textBody ?? texts[row.locale ?? 'da'].text;
            await deps.mailer.send({ from: deps.config.MAIL_FROM, to: row.recipient, subject: row.subject, text, messageId: row.messageId });
            markSent(row.key);
            sent++;
            beat();
          } catch (err) {
            const message = safeErrorText(err); // the server's text quotes the address
            try {
              if (isPermanent(err)) {
                await deps.sql`update email_outbox set status = 'failed', attempts = attempts + 1, last_error = ${message} where key = ${row.key}`;
                failed++;
              } else {
                await deps.sql`update email_outbox set attempts = attempts + 1, last_error = ${message} where key = ${row.key}`;
                halt('smtp', err);
              }
            } catch (dbErr) {
              halt('database', dbErr);
            }
          } finally {
            inFlight--;
            pokeProducer();
          }
        }
      };

      const produce = async () => {
        let lastKey = '';
        let moreToEnqueue = true;
        try {
          while (!stop && Date.now() - started <= input.timeBudgetMs) {
            if (moreToEnqueue) {
              const page = await enqueue(cursor);
              if (input.cursor !== null && page.last) cursor = page.last;
              moreToEnqueue = page.n > 0;
            }
            let rows = await fetchPending(lastKey);
            if (rows.length === 0 && !moreToEnqueue) {
              // The end of the pass: once nothing is in flight, look again from the start, since
              // people registered meanwhile can sort before the last key.
              await producerWaits(() => !!stop || (waiting() === 0 && inFlight === 0));
              if (stop) break;
              // …and once every accepted notice is marked, or it would be fetched again.
              await settleMarks();
              rows = await fetchPending('');
              if (rows.length === 0) {
                done = true;
                break;
              }
            }
            // A page can bring no pending rows: after a restart its people may have been enqueued and sent already.
            if (rows.length > 0) {
              if (head > 4 * batchSize) {
                buffer = buffer.slice(head);
                head = 0;
              }
              buffer.push(...rows);
              lastKey = rows.at(-1)!.key;
              wake();
            }
            beat();
            // One page ahead of the lanes is enough to keep them busy.
            await producerWaits(() => !!stop || waiting() < batchSize);
          }
        } catch (err) {
          halt('database', err);
        } finally {
          producing = false;
          wake();
        }
      };

      // The worker shutting down (a restart) or Temporal giving up on this attempt: take no new
      // rows, let the notices in flight finish and be marked, then hand over. Nobody is sent twice.
      context.cancelled.catch((err: unknown) => halt('cancelled', err));

      await fenced(campaign, (err) => halt('database', err), async () => {
        await Promise.all([produce(), ...Array.from({ length: lanes }, lane)]);
        // Whatever was accepted must be marked before the slice reports back (and lets go of the lock).
        await settleMarks();
      });
      context.heartbeat({ cursor });
      // SMTP or Postgres is down: stop here; the activity's retry (with backoff) resumes with what is still pending.
      if (stop?.reason === 'cancelled') throw stop.error;
      if (stop) {
        const detail = safeErrorText(stop.error);
        if (stop.reason === 'smtp') throw ApplicationFailure.retryable(`SMTP refused for now: ${detail}`, 'SmtpTemporaryFailure');
        throw ApplicationFailure.retryable(`the outbox is unavailable: ${detail}`, 'OutboxUnavailable');
      }
      const { sent: totalSent, failed: totalFailed } = await noticeCounts(deps.sql, input.version);
      return { cursor, sent, failed, done, totals: { sent: totalSent, failed: totalFailed } };
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
