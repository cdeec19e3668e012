import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { AudioTooLargeError, type RecordingStore, type StagedAudio } from '../lib/recording-store';
import { AppError } from './problem';

export interface ParsedUpload {
  fields: Record<string, string>;
  audio?: StagedAudio & { contentType: string };
  /** Anything besides the one `audio` file and plain fields. */
  unexpected: string[];
}

/** Swallows a stream's error: the pipeline that owns the stream reports it. */
const ignore = () => {};

/**
 * Streams a multipart upload: plain fields into memory (small, bounded), the `audio` file
 * straight into the store's staging area with its SHA-256. Nothing is committed here; the
 * caller commits or discards once the fields are validated.
 *
 * Hostile bodies (cut off mid-part, a client that disconnects, a second file) must never reach
 * an error event nobody listens to — in Node that ends the process. So: every file stream gets
 * an error listener the moment busboy hands it over, the body and the parser run in one
 * `pipeline` (an error on either side destroys both, and destroying busboy destroys the file
 * stream it is feeding), and whatever was staged is discarded before the error is answered.
 */
export async function parseRecordingUpload(req: Request, store: RecordingStore, maxBytes: number): Promise<ParsedUpload> {
  const contentType = req.headers.get('content-type') ?? '';
  if (!/^multipart\/form-data;\s*boundary=/i.test(contentType)) {
    throw new AppError('unsupported-media-type', 415, 'Upload a recording as multipart/form-data with an `audio` file.');
  }
  if (Number(req.headers.get('content-length') ?? 0) > maxBytes + 64 * 1024) {
    throw new AppError('payload-too-large', 413, `Audio is limited to ${maxBytes} bytes.`);
  }
  if (!req.body) throw new AppError('validation-failed', 422, 'The upload is empty.', { errors: [{ field: 'audio', in: 'form', message: 'required' }] });

  const parsed: ParsedUpload = { fields: {}, unexpected: [] };
  const staging: Promise<void>[] = [];
  let tooLarge = false;
  let malformed: string | undefined;

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      limits: { fileSize: maxBytes, files: 3, fields: 20, fieldSize: 1024, parts: 25 },
    });
  } catch (err) {
    // e.g. a boundary busboy cannot use
    throw new AppError('validation-failed', 422, `The multipart body is malformed: ${(err as Error).message}.`);
  }
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) parsed.unexpected.push(`${name} (longer than 1024 characters)`);
    else parsed.fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
    stream.on('error', ignore);
    if (name !== 'audio' || staging.length > 0) {
      parsed.unexpected.push(name === 'audio' ? 'audio (a second file)' : name);
      stream.resume();
      return;
    }
    stream.on('limit', () => {
      tooLarge = true;
    });
    staging.push(
      store.stage(stream).then(async (staged) => {
        if (tooLarge) await staged.discard();
        else parsed.audio = { ...staged, contentType: info.mimeType };
      }),
    );
  });
  parser.on('filesLimit', () => parsed.unexpected.push('(more than 3 files)'));
  parser.on('fieldsLimit', () => parsed.unexpected.push('too many fields'));
  parser.on('error', (err: Error) => {
    malformed ??= err.message;
  });

  const body = Readable.fromWeb(req.body as import('node:stream/web').ReadableStream);
  try {
    await pipeline(body, parser);
    await Promise.all(staging);
  } catch (err) {
    // The body or the parser failed: both are destroyed by now, and so is any file stream, so
    // every staging write settles (and removes its partial file).
    parser.destroy();
    await Promise.allSettled(staging);
    await parsed.audio?.discard();
    if (err instanceof AudioTooLargeError) tooLarge = true;
    else if (malformed) throw new AppError('validation-failed', 422, `The multipart body is malformed: ${malformed}.`);
    else throw new AppError('bad-request', 400, 'The upload was interrupted before it was complete; nothing was stored.');
  }
  if (tooLarge) {
    await parsed.audio?.discard();
    throw new AppError('payload-too-large', 413, `Audio is limited to ${maxBytes} bytes.`);
  }
  return parsed;
}
