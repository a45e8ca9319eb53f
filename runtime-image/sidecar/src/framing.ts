// Frames of the worker protocol (runtime-image/PROTOCOL.md §1): a 4-byte big-endian length,
// then that many bytes of UTF-8 JSON holding one object with a string `type`. The frame limit is
// the protocol's (protocol/src/worker-messages.ts).
import { MAX_FRAME_BYTES } from "../../../protocol/index.js";

export { MAX_FRAME_BYTES };

const HEADER_BYTES = 4;

export interface WorkerMessage {
  type: string;
  [field: string]: unknown;
}

/** The stream cannot be trusted any more: close the connection. */
export class FrameError extends Error {
  override name = "FrameError";
}

export function encodeFrame(message: WorkerMessage, max = MAX_FRAME_BYTES): Buffer {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (body.length > max) throw new FrameError(`frame of ${body.length} bytes exceeds the ${max}-byte limit`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Turns a byte stream into messages. Chunks are kept as they arrive and joined only when a
 * frame is complete, so a large frame delivered in many chunks is copied once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need: number | undefined; // body length once the header is read

  constructor(private readonly max = MAX_FRAME_BYTES) {}

  /** Every complete message in the bytes so far; throws FrameError on a broken stream. */
  push(chunk: Buffer): WorkerMessage[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: WorkerMessage[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.buffered < HEADER_BYTES) break;
        const n = this.take(HEADER_BYTES).readUInt32BE(0);
        if (n > this.max) throw new FrameError(`incoming frame of ${n} bytes exceeds the ${this.max}-byte limit`);
        this.need = n;
      }
      if (this.buffered < this.need) break;
      const body = this.take(this.need);
      this.need = undefined;
      out.push(parseBody(body));
    }
    return out;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.buffered + (this.need === undefined ? 0 : HEADER_BYTES);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first !== undefined && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

function parseBody(body: Buffer): WorkerMessage {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(body));
  } catch (e) {
    throw new FrameError(`frame is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError("frame must hold a JSON object");
  }
  if (typeof (value as { type?: unknown }).type !== "string") {
    throw new FrameError("frame must hold an object with a string 'type'");
  }
  return value as WorkerMessage;
}
