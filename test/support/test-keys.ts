import { createHash } from 'node:crypto';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import { AesGcmPayloadCodec, createDataConverter } from '../../lib/payload-codec';
import { keyRingFromConfig, keySpec } from '../../lib/payload-keys';

// No vitest import here: the global setup (history recording) uses these too.
/**
 * Issue 12: the tests run with the payload codec on, as production does, under a fixed test key
 * (derived from a public string: it protects nothing) so that histories recorded by a test run
 * (`npm run histories:record`) replay in test/replay.test.ts with the same ring.
 */
export const TEST_PAYLOAD_KEYS = keySpec('test-1', createHash('sha256').update('privacy-backoffice test payload key 1').digest());
/** The data converter of every test client, worker and replayer (the test key ring). */
export const testDataConverter = (spec = TEST_PAYLOAD_KEYS): DataConverter => createDataConverter(keyRingFromConfig(spec));
export const testPayloadCodec = (spec = TEST_PAYLOAD_KEYS): PayloadCodec => new AesGcmPayloadCodec(keyRingFromConfig(spec));
