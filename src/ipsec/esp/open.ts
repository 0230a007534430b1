// Inbound ESP (RFC 4303 §3.4), in order: length checks → SPI → replay pre-check (read-only) →
// ICV in constant time → commit to the window → decrypt → padding check → Next Header 59 drop.
// (For GCM the ICV check and decryption are one OpenSSL call; nothing is committed before both.)
// Any input, however short or random, yields a verdict; nothing here throws.
import type { EspDrop, EspOpenResult } from './index.ts';
import type { AntiReplay } from './replay-window.ts';
import type { EspTransform } from './transform.ts';
import { ESP_HEADER_LEN, ESP_SEQ_OFFSET, ESP_SPI_OFFSET, ESP_TRAILER_LEN, IPPROTO_NONE, paddingIsDefault, readU32 } from './wire.ts';

const drop = (d: EspDrop, seq?: number): EspOpenResult => (seq === undefined ? { ok: false, drop: d } : { ok: false, drop: d, seq });

/**
 * Asked before an authenticated packet moves the window past its highest number (the SA layer makes
 * its persisted high-water mark cover `seq` first, issue 13 §3); false refuses the packet as
 * 'outside-window' with nothing committed. An object with a method, not a closure: the SA is its
 * own gate, so an SA costs no closure (issue 9 §2).
 */
export interface AdvanceGate {
  mayAdvance(seq: number): boolean;
}

/** `gate`: see AdvanceGate. */
export function openEsp(t: EspTransform, window: AntiReplay, spi: number, pkt: Uint8Array, gate?: AdvanceGate): EspOpenResult {
  if (pkt.length < ESP_HEADER_LEN) return drop('short');
  if (readU32(pkt, ESP_SPI_OFFSET) !== spi) return drop('unknown-spi');
  const seq = readU32(pkt, ESP_SEQ_OFFSET);
  const bodyLen = pkt.length - ESP_HEADER_LEN - t.ivLen - t.icvLen;
  if (bodyLen < ESP_TRAILER_LEN) return drop('short', seq);
  // Like Linux esp_input: the encrypted part must be a whole number of align units (block, 4).
  if (bodyLen % t.align !== 0) return drop('malformed', seq);

  // RFC 4303 §3.4.3: the replay check should be the first ESP check after the SA lookup; it is cheap.
  const verdict = window.check(seq);
  if (verdict !== 'ok') return drop(verdict, seq);

  let body: Uint8Array | undefined;
  try {
    body = t.open(pkt);
  } catch {
    body = undefined; // a transform must not throw on content; if one does, the packet is not authentic
  }
  if (!body) return drop('icv', seq);

  // RFC 4303 §3.4.3: only an authenticated packet moves the window.
  if (gate && seq > window.highest && !gate.mayAdvance(seq)) return drop('outside-window', seq);
  window.commit(seq);

  const n = body.length;
  const padLen = body[n - 2]!;
  const nextHeader = body[n - 1]!;
  if (padLen > n - ESP_TRAILER_LEN) return drop('padding', seq);
  const payloadLen = n - ESP_TRAILER_LEN - padLen;
  // RFC 4303 §2.4: the receiver should check the default pad content 1, 2, 3, …
  if (!paddingIsDefault(body, payloadLen, padLen)) return drop('padding', seq);
  // RFC 4303 §2.6: a dummy packet is discarded silently (after the window was updated).
  if (nextHeader === IPPROTO_NONE) return drop('dummy', seq);
  return { ok: true, seq, nextHeader, payload: body.subarray(0, payloadLen) };
}
