// Deterministic FunctionCall names, the same rule as the Python SDK (trellis/protocol/names.py):
// a child of `parent` at operation `seq` is "<request>-<16 chars>", the chars being the first 16
// of the lowercase unpadded base32 of SHA-256("<parent>/<seq>"). Map item i and reduce step k
// are children of the map/reduce call with seq = i / k. Names stay the same length at any depth.
import { createHash } from "node:crypto";

export const CHILD_SUFFIX_LEN = 16;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function base32Lower(bytes: Uint8Array, chars: number): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
    if (out.length >= chars) break;
  }
  return out;
}

export function childName(request: string, parent: string, seq: number): string {
  const digest = createHash("sha256").update(`${parent}/${seq}`, "utf8").digest();
  return `${request}-${base32Lower(digest, CHILD_SUFFIX_LEN)}`;
}
