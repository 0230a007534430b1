// Hand-built ESP packets the engine refuses to make (RFC 4303 §2.4/§2.6): dummy packets (Next
// Header 59) and non-default padding, for NULL encryption with HMAC-SHA-1-96, computed with node:crypto.
import { createHmac } from 'node:crypto';
import { buildIpPacket } from '../../src/ipsec/esp/index.ts';

export function craftNullSha1Esp(o: {
  spi: number;
  seq: number;
  payload: Uint8Array;
  nextHeader: number;
  pad?: number[];
  ikEsp: Uint8Array;
}): Uint8Array {
  // Pad so that payload ‖ pad ‖ padLen ‖ NH ends on a 4-octet boundary; default content 1, 2, 3, …
  const padLen = o.pad ? o.pad.length : (4 - ((o.payload.length + 2) % 4)) % 4;
  const pad = o.pad ?? Array.from({ length: padLen }, (_, i) => i + 1);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(o.spi, 0);
  head.writeUInt32BE(o.seq, 4);
  const body = Buffer.concat([head, Buffer.from(o.payload), Buffer.from(pad), Buffer.from([padLen, o.nextHeader])]);
  const icv = createHmac('sha1', o.ikEsp).update(body).digest().subarray(0, 12);
  return Buffer.concat([body, icv]);
}

export function espInIp(src: string, dst: string, esp: Uint8Array): Uint8Array {
  return buildIpPacket({ src, dst, protocol: 50, payload: esp });
}
