/**
 * The baseline of bench/policy-notices: plain nodemailer sending the same notices to the same
 * sink with the same concurrency, no outbox, no workflow (LIMIT: only the first N, as a warm-up). Prints `{"sent":N,"seconds":S}`.
 */
import { createSql } from '../db/index';
import { createMailer } from '../lib/mailer';
import { policyNoticeEmail } from '../lib/email-templates';
import { findPolicy } from '../db/policies';

const { DATABASE_URL, SMTP_URL, VERSION, CONCURRENCY, LIMIT = 'all', MAIL_FROM = 'TopCall <kundeservice@topcall.dk>', PUBLIC_URL = 'http://127.0.0.1:3000' } = process.env;
const sql = createSql(DATABASE_URL!);
const concurrency = Number(CONCURRENCY);
const mailer = createMailer(SMTP_URL!, { pool: true, maxConnections: concurrency });
const policy = (await findPolicy(sql, VERSION!))!;
const link = `${PUBLIC_URL}/v1/policies/${VERSION}/text`;
const texts = {
  da: policyNoticeEmail({ locale: 'da', version: policy.version, summary: policy.summary, effectiveAt: policy.effectiveAt.toISOString(), link }),
  en: policyNoticeEmail({ locale: 'en', version: policy.version, summary: policy.summary, effectiveAt: policy.effectiveAt.toISOString(), link }),
};
const people = await sql<{ id: string; email: string; locale: 'da' | 'en' }[]>`select id, email, locale from customers where status = 'active' and email is not null order by id ${LIMIT === 'all' ? sql`` : sql`limit ${Number(LIMIT)}`}`;
const started = performance.now();
const cpuBefore = process.cpuUsage();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < people.length) {
      const p = people[next++]!;
      const t = texts[p.locale];
      await mailer.send({ from: MAIL_FROM, to: p.email, subject: t.subject, text: t.text, messageId: `<plain-${p.id}@topcall.dk>` });
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
mailer.close();
await sql.end();
console.log(JSON.stringify({ sent: people.length, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
