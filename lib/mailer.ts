import nodemailer from 'nodemailer';

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  messageId: string;
  headers?: Record<string, string>;
}

/** What activities need of SMTP; a typed fake of it is allowed only to inject a failure. */
export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export function createMailer(smtpUrl: string, options: { pool?: boolean; maxConnections?: number } = {}): Mailer {
  const transport = nodemailer.createTransport(
    options.pool ? { url: smtpUrl, pool: true, maxConnections: options.maxConnections ?? 5 } as never : smtpUrl,
  );
  return {
    async send(mail) {
      await transport.sendMail({
        from: mail.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        messageId: mail.messageId,
        headers: mail.headers,
      });
    },
    close: () => transport.close(),
  };
}
