import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, type ConnectionLike, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { searchAttributeKeys } from '../workflows/search-attributes';
import { ConfigError, temporalTlsOn, type Config } from './config';
import { temporalAddress } from './endpoints';

/**
 * What every Temporal connection of the project takes (the API's client, the worker's
 * NativeConnection and its admin connection): address, TLS (server CA, mTLS client pair, server
 * name) and API key, from the TEMPORAL_* settings. Reads the certificate and key files now, so a
 * missing file stops the process at start with the variable named. The key and the API key go
 * to the SDK only; nothing here is logged.
 */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function temporalConnectionOptions(config: Config): TemporalConnectionOptions {
  const address = temporalAddress(config);
  if (!temporalTlsOn(config)) return { address };
  const problems: string[] = [];
  const read = (key: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' | 'TEMPORAL_TLS_CLIENT_CERT_PATH' | 'TEMPORAL_TLS_CLIENT_KEY_PATH') => {
    const file = config[key];
    if (!file) return undefined;
    try {
      return readFileSync(path.resolve(file));
    } catch (err) {
      problems.push(`${key}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  };
  const ca = read('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const crt = read('TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = read('TEMPORAL_TLS_CLIENT_KEY_PATH');
  if (problems.length) throw new ConfigError(problems);
  const tls: TLSConfig = {
    ...(config.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME } : {}),
    ...(ca ? { serverRootCACertificate: ca } : {}),
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
  };
  return { address, tls, ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}) };
}

/**
 * A client whose connection opens on first use, so the API can start (and say 503) before
 * Temporal is up. `dataConverter`: the payload codec (lib/payload-codec.ts), which every client
 * of the back office passes; without it the client reads and writes payloads in clear.
 */
export function createLazyClient(options: string | TemporalConnectionOptions, namespace: string, dataConverter: DataConverter | undefined): Client {
  const connection = Connection.lazy(typeof options === 'string' ? { address: options } : options);
  return new Client({ connection, namespace, ...(dataConverter ? { dataConverter } : {}) });
}

/** Answers within `timeoutMs` whether the Temporal frontend serves requests. */
export async function temporalAnswers(connection: ConnectionLike, timeoutMs = 2000): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers the contract's search attributes on an existing Temporal server when they are
 * missing (the embedded dev server registers them at start; a cluster may not have them yet).
 */
export async function ensureSearchAttributes(connection: ConnectionLike, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set([...Object.keys(existing.customAttributes ?? {}), ...Object.keys(existing.systemAttributes ?? {})]);
  const missing = searchAttributeKeys.filter((k) => !known.has(k.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type)!])),
  });
  return missing.map((k) => k.name);
}
