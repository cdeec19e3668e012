import { open, truncate, type FileHandle } from 'node:fs/promises';

/**
 * Appends POSIX ustar entries to a file at a given offset, in large positioned writes.
 *
 * The transfer package holds a file per recording: a hundred thousand small entries. A tar
 * stream library spends more per entry (stream machinery, a write per header) than the entry
 * itself costs, so the package writer builds the 512-byte headers here — the format is fixed
 * and small — and hands the kernel a megabyte at a time. Reading stays with tar-stream
 * (`lib/verify-transfer.ts`), which checks every header this writes.
 */
const BLOCK = 512;
const FLUSH_AT = 1024 * 1024;
const ZEROS = Buffer.alloc(BLOCK * 2);

function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width - 1} octal digits`);
  return `${digits.padStart(width - 1, '0')}\0`;
}

/** The fields every entry shares (mode, owner, mtime, type, magic), and their checksum contribution, per mtime and mode. */
const templates = new Map<string, { block: Buffer; sum: number }>();
function template(mtime: Date, mode: number) {
  const key = `${mtime.getTime()}:${mode}`;
  let t = templates.get(key);
  if (!t) {
    const block = Buffer.alloc(BLOCK);
    block.write(octal(mode, 8), 100, 'ascii');
    block.write(octal(0, 8), 108, 'ascii'); // uid
    block.write(octal(0, 8), 116, 'ascii'); // gid
    block.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136, 'ascii');
    block.write('        ', 148, 'ascii'); // the checksum field counts as spaces while summing
    block.write('0', 156, 'ascii'); // regular file
    block.write('ustar\0', 257, 'ascii');
    block.write('00', 263, 'ascii');
    let sum = 0;
    for (const byte of block) sum += byte;
    t = { block, sum };
    templates.set(key, t);
  }
  return t;
}

const sumOf = (block: Buffer, from: number, to: number) => {
  let sum = 0;
  for (let i = from; i < to; i++) sum += block[i]!;
  return sum;
};

/**
 * A ustar header: names up to 100 bytes, or split at a slash into a prefix of up to 155. Starts
 * from the entry-independent template, so only the name, prefix and size are written and summed.
 */
export function ustarHeader(name: string, size: number, mtime: Date, mode = 0o600): Buffer {
  const t = template(mtime, mode);
  const header = Buffer.allocUnsafe(BLOCK);
  t.block.copy(header);
  let base = name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 1);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar: name too long for ustar: ${name}`);
  }
  const nameBytes = header.write(base, 0, 100, 'utf8');
  header.write(octal(size, 12), 124, 'ascii');
  const prefixBytes = prefix ? header.write(prefix, 345, 155, 'utf8') : 0;
  const sum = t.sum + sumOf(header, 0, nameBytes) + sumOf(header, 124, 136) + sumOf(header, 345, 345 + prefixBytes);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return header;
}

const padding = (size: number) => (size % BLOCK === 0 ? 0 : BLOCK - (size % BLOCK));

/** The bytes a ustar archive of these entries takes (headers, padding, end-of-archive marker). */
export const tarSize = (sizes: number[]) => sizes.reduce((sum, size) => sum + BLOCK + size + padding(size), 2 * BLOCK);

/**
 * A whole (small) ustar archive in memory: the transfer package packs a batch's short
 * recordings into one archive that is then encrypted as one file (see lib/transfer-package.ts).
 */
export function tarBuffer(entries: { name: string; data: Buffer }[], mtime: Date): Buffer {
  const out = Buffer.alloc(tarSize(entries.map((e) => e.data.length)));
  let at = 0;
  for (const e of entries) {
    at += ustarHeader(e.name, e.data.length, mtime).copy(out, at);
    at += e.data.copy(out, at);
    at += padding(e.data.length); // Buffer.alloc: the padding and the end marker are zeros already
  }
  return out;
}

export class TarAppender {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  private constructor(
    private readonly fh: FileHandle,
    private position: number,
    private readonly mtime: Date,
  ) {}

  /**
   * Opens `file` to append at `offset` — cutting off whatever lies beyond it (a crashed
   * attempt's writes, or the end-of-archive marker) — or creates it anew when `offset` is null.
   */
  static async open(file: string, offset: number | null, mtime: Date): Promise<TarAppender> {
    if (offset !== null) await truncate(file, offset);
    const fh = await open(file, offset === null ? 'w' : 'r+', 0o600);
    return new TarAppender(fh, offset ?? 0, mtime);
  }

  private async push(chunk: Buffer) {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FLUSH_AT) await this.flush();
  }

  private async flush() {
    if (!this.pendingBytes) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    let written = 0;
    while (written < bytes) {
      const { bytesWritten } = await this.fh.writev(written ? [Buffer.concat(chunks).subarray(written)] : chunks, this.position + written);
      written += bytesWritten;
    }
    this.position += bytes;
  }

  async add(name: string, data: Buffer): Promise<void> {
    await this.push(ustarHeader(name, data.length, this.mtime));
    await this.push(data);
    const pad = padding(data.length);
    if (pad) await this.push(ZEROS.subarray(0, pad));
  }

  /** An entry of exactly `size` bytes from a stream (fails if the stream gives more or fewer). */
  async addStream(name: string, size: number, source: AsyncIterable<Buffer>, onChunk?: (chunk: Buffer) => void): Promise<void> {
    await this.push(ustarHeader(name, size, this.mtime));
    let seen = 0;
    for await (const chunk of source) {
      seen += chunk.length;
      if (seen > size) throw new Error(`tar: ${name} is longer than its ${size} bytes`);
      onChunk?.(chunk);
      await this.push(Buffer.from(chunk));
    }
    if (seen !== size) throw new Error(`tar: ${name} has ${seen} bytes, not ${size}`);
    const pad = padding(size);
    if (pad) await this.push(ZEROS.subarray(0, pad));
  }

  /** Writes the end-of-archive marker, syncs, closes; returns where the marker starts (the next append's offset). */
  async close(): Promise<number> {
    const end = this.position + this.pendingBytes;
    await this.push(ZEROS);
    await this.flush();
    await this.fh.datasync();
    await this.fh.close();
    return end;
  }

  /** Gives up without the marker (the next attempt cuts back to its own offset anyway). */
  async abandon(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
