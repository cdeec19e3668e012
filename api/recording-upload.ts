import { Readable } from 'node:stream';
import busboy from 'busboy';
import { AudioTooLargeError, type RecordingStore, type StagedAudio } from '../lib/recording-store';
import { AppError } from './problem';

export interface ParsedUpload {
  fields: Record<string, string>;
  audio?: StagedAudio & { contentType: string };
  /** Anything besides the one `audio` file and plain fields. */
  unexpected: string[];
}

/**
 * Streams a multipart upload: plain fields into memory (small, bounded), the `audio` file
 * straight into the store's staging area with its SHA-256. Nothing is committed here; the
 * caller commits or discards once the fields are validated.
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

  const parser = busboy({
    headers: { 'content-type': contentType },
    limits: { fileSize: maxBytes, files: 3, fields: 20, fieldSize: 1024, parts: 25 },
  });
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) parsed.unexpected.push(`${name} (longer than 1024 characters)`);
    else parsed.fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
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

  try {
    await new Promise<void>((resolve, reject) => {
      parser.on('close', resolve);
      parser.on('error', (err: Error) => {
        malformed = err.message;
        reject(err);
      });
      Readable.fromWeb(req.body as import('node:stream/web').ReadableStream).on('error', reject).pipe(parser);
    });
    await Promise.all(staging);
  } catch (err) {
    await Promise.allSettled(staging);
    await parsed.audio?.discard();
    if (err instanceof AudioTooLargeError) tooLarge = true;
    else if (malformed) throw new AppError('validation-failed', 422, `The multipart body is malformed: ${malformed}.`);
    else throw err;
  }
  if (tooLarge) {
    await parsed.audio?.discard();
    throw new AppError('payload-too-large', 413, `Audio is limited to ${maxBytes} bytes.`);
  }
  return parsed;
}
