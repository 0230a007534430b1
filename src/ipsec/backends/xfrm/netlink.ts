// Netlink framing (netlink(7), rtnetlink-style attributes in linux/netlink.h): nlmsghdr, nlattr
// (4-octet aligned TLVs), nlmsgerr with its extended-ack TLVs. Pure: bytes in, typed values out.
// Header fields are in host byte order (little-endian on every platform Node ships for Linux).

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NETLINK_XFRM = 6;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
/** GET: NLM_F_ROOT | NLM_F_MATCH. */
export const NLM_F_DUMP = 0x300;
/** ACK flags (in the NLMSG_ERROR header): request payload cut (NETLINK_CAP_ACK); TLVs follow. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

/** Extended ack TLVs (enum nlmsgerr_attrs). */
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const align4 = (n: number): number => (n + 3) & ~3;

export interface NlAttr {
  readonly type: number;
  readonly value: Uint8Array;
}

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** The octets after the 16-octet header (nlmsg_len − 16), a view into the input. */
  readonly payload: Uint8Array;
}

/** The TLVs, each padded to 4 octets (nla_len counts header + value, not the padding). */
export function encodeAttrs(attrs: readonly NlAttr[]): Uint8Array {
  const total = attrs.reduce((n, a) => n + align4(NLA_HDRLEN + a.value.length), 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const a of attrs) {
    const len = NLA_HDRLEN + a.value.length;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} too long (${len})`);
    dv.setUint16(off, len, true);
    dv.setUint16(off + 2, a.type, true);
    out.set(a.value, off + NLA_HDRLEN);
    off += align4(len);
  }
  return out;
}

/**
 * Parses a run of attributes. Types keep their NLA_F_NESTED / NLA_F_NET_BYTEORDER bits masked off.
 * Undefined when an attribute runs past the end or is shorter than its header.
 */
export function decodeAttrs(buf: Uint8Array): NlAttr[] | undefined {
  const out: NlAttr[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = dv.getUint16(off, true);
    const type = dv.getUint16(off + 2, true) & 0x3fff;
    if (len < NLA_HDRLEN || off + len > buf.length) return undefined;
    out.push({ type, value: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

/** First attribute of a type (the kernel sends each XFRMA_* at most once). */
export function attrOf(attrs: readonly NlAttr[], type: number): Uint8Array | undefined {
  return attrs.find((a) => a.type === type)?.value;
}

/** One message: header (length, type, flags, seq, pid) + body + attributes. */
export function encodeMessage(m: {
  type: number;
  flags: number;
  seq: number;
  pid?: number;
  body: Uint8Array;
  attrs?: readonly NlAttr[];
}): Uint8Array {
  const attrs = m.attrs && m.attrs.length > 0 ? encodeAttrs(m.attrs) : new Uint8Array(0);
  const bodyLen = align4(m.body.length);
  const len = NLMSG_HDRLEN + bodyLen + attrs.length;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, m.type, true);
  dv.setUint16(6, m.flags, true);
  dv.setUint32(8, m.seq >>> 0, true);
  dv.setUint32(12, (m.pid ?? 0) >>> 0, true);
  out.set(m.body, NLMSG_HDRLEN);
  out.set(attrs, NLMSG_HDRLEN + bodyLen);
  attrs.fill(0);
  return out;
}

/** Splits one datagram into messages; undefined when a length field is impossible. */
export function decodeMessages(buf: Uint8Array): NlMessage[] | undefined {
  const out: NlMessage[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > buf.length) return undefined;
    out.push({
      type: dv.getUint16(off + 4, true),
      flags: dv.getUint16(off + 6, true),
      seq: dv.getUint32(off + 8, true),
      pid: dv.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface NlError {
  /** Positive errno; 0 is an ACK. */
  readonly errno: number;
  /** The type and seq of the request this answers. */
  readonly requestType: number;
  readonly requestSeq: number;
  /** NLMSGERR_ATTR_MSG: the kernel's explanation (extended ack), if any. */
  readonly message?: string;
}

/**
 * Parses an NLMSG_ERROR payload: int error (negative errno, 0 = ACK), the request's header, the
 * rest of the request unless NLM_F_CAPPED, then extended-ack TLVs when NLM_F_ACK_TLVS.
 */
export function decodeError(msg: NlMessage): NlError | undefined {
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) return undefined;
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const err = dv.getInt32(0, true);
  const reqLen = dv.getUint32(4, true);
  const base = { errno: err === 0 ? 0 : -err, requestType: dv.getUint16(8, true), requestSeq: dv.getUint32(12, true) };
  if (!(msg.flags & NLM_F_ACK_TLVS)) return base;
  const tlvStart = 4 + (msg.flags & NLM_F_CAPPED || err === 0 ? NLMSG_HDRLEN : align4(reqLen));
  const tlvs = tlvStart <= p.length ? decodeAttrs(p.subarray(tlvStart)) : undefined;
  const text = tlvs && attrOf(tlvs, NLMSGERR_ATTR_MSG);
  if (!text) return base;
  const end = text.indexOf(0);
  return { ...base, message: new TextDecoder().decode(end >= 0 ? text.subarray(0, end) : text) };
}
