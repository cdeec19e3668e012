import type { WebSession } from './web/session';
import type { CustomerRow } from '../db/customers';
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { Config } from '../lib/config';
import type { Logger } from '../lib/log';
import type { Sql } from '../db/index';
import type { Principal } from './auth';
import type { RecordingStore } from '../lib/recording-store';
import type { PersonKeys } from '../db/person-keys';

/** What the API needs from the outside world; built by api/main.ts, or by a test. */
export interface ApiDeps {
  config: Config;
  sql: Sql;
  temporal: Client;
  store: RecordingStore;
  log: Logger;
  /** Issue 12: the payload codec the Temporal client uses, for the Web UI's codec endpoints (/codec/encode, /codec/decode). */
  payloadCodec: PayloadCodec;
  /** Issue 12: the person data keys (db/person-keys.ts); unset, derived from `sql` and `config` (personKeysFor). */
  keys?: PersonKeys;
}

export type AppEnv = {
  Variables: {
    deps: ApiDeps;
    requestId: string;
    principal?: Principal;
    /** The account pages' browser session and its person (api/routes/account.ts). */
    session?: WebSession;
    me?: CustomerRow;
    /** Set by the idempotency middleware when the request carries an Idempotency-Key (hex, scoped to caller and path). */
    idempotencyScope?: string;
  };
};
