import type { Config } from './config';

/** Unset TEMPORAL_ADDRESS / SMTP_URL mean the embedded services that `npm start` runs. */
export const temporalAddress = (config: Config) => config.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
export const smtpUrl = (config: Config) => config.SMTP_URL ?? `smtp://127.0.0.1:${config.MAIL_SINK_SMTP_PORT}`;
