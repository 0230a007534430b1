// Whether this process can use the xfrm backend here, asked before anything is installed: the
// native addon, CAP_NET_ADMIN (the kernel checks it on every NETLINK_XFRM request) and a kernel with
// ESP (esp4/esp6 and xfrm_user), proved by adding and deleting one throw-away tagged SA.
import { randomBytes } from 'node:crypto';
import { XfrmError, errnoName } from './errors.ts';
import { delSaMessage, dumpSaMessage, parseSa, saMessage, type SaSpec } from './messages.ts';
import { loadNative } from './native.ts';
import { ownerTag } from './plan.ts';
import { XfrmNetlink, type XfrmTransport } from './socket.ts';

/** The tag instance of the probe SA (never a backend's: they are told their instance). */
export const PROBE_INSTANCE = 0xffff;

const EPERM = 1;
const EACCES = 13;
const EEXIST = 17;
const ENOSYS = 38;
const EPROTONOSUPPORT = 93;
const EAFNOSUPPORT = 97;
const NO_ESP = [EPROTONOSUPPORT, ENOSYS, EAFNOSUPPORT, 2 /* ENOENT: no such algorithm */];

export const XFRM_NEEDS = 'the xfrm backend needs Linux with ESP (esp4/esp6 and xfrm_user modules), CAP_NET_ADMIN, and the native addon';

function unavailable(why: string, errno?: number): XfrmError {
  return new XfrmError('XFRM_UNAVAILABLE', `${why} — ${XFRM_NEEDS}`, errno);
}

/** Turns what netlink said into one clear reason. */
function explain(e: unknown, family: 4 | 6): XfrmError {
  if (e instanceof XfrmError && e.code === 'XFRM_NO_ADDON') return unavailable(e.message);
  const errno = (e as { errno?: number }).errno;
  const text = e instanceof Error ? e.message : String(e);
  if (errno === EPERM || errno === EACCES)
    return unavailable(
      `no CAP_NET_ADMIN: the kernel refused an XFRM request (${errnoName(errno)}); run as root or grant the capability`,
      errno,
    );
  if (errno !== undefined && NO_ESP.includes(errno)) {
    return unavailable(
      `this kernel has no IPv${family} ESP (${text.includes('Requested type not found') ? '"Requested type not found", ' : ''}${errnoName(errno)}); load esp${family} (and xfrm_user) or use the userspace backend`,
      errno,
    );
  }
  return unavailable(`the XFRM probe failed: ${text}`, errno);
}

/**
 * Throws XfrmError XFRM_UNAVAILABLE naming what is missing; returns when the backend can work for
 * `family`. The probe SA (loopback, transport, null encryption, hard lifetime 10 s so that even a
 * crash between add and delete leaves nothing for long) is deleted before this returns.
 */
export function xfrmPreflight(family: 4 | 6 = 4, transport?: XfrmTransport): void {
  let nl: XfrmTransport;
  try {
    if (!transport) loadNative();
    nl = transport ?? new XfrmNetlink();
  } catch (e) {
    // socket(AF_NETLINK, NETLINK_XFRM) fails with EPROTONOSUPPORT when xfrm_user is not there.
    throw explain(e, family);
  }
  try {
    nl.dump(dumpSaMessage(nl.nextSeq()), 'preflight: dump SAs', parseSa);
    const lo = family === 4 ? '127.0.0.1' : '::1';
    for (let attempt = 0; ; attempt++) {
      const spi = 0x1000 + (randomBytes(4).readUInt32BE(0) % 0x7fff0000);
      const spec: SaSpec = {
        family,
        src: lo,
        dst: lo,
        spi,
        reqid: 0,
        mode: 'transport',
        replayWindow: 32,
        hardSeconds: 10,
        sel: {
          family,
          src: lo,
          dst: lo,
          prefixSrc: family === 4 ? 32 : 128,
          prefixDst: family === 4 ? 32 : 128,
          sport: 0,
          dport: 0,
          proto: 0,
          user: ownerTag(PROBE_INSTANCE),
        },
        algs: {
          auth: { name: 'hmac(sha1)', key: new Uint8Array(20), truncBits: 96 },
          crypt: { name: 'ecb(cipher_null)', key: new Uint8Array(0) },
        },
      };
      try {
        nl.request(saMessage(spec, { seq: nl.nextSeq() }), `preflight: add a probe ESP SA (IPv${family})`);
      } catch (e) {
        if ((e as { errno?: number }).errno === EEXIST && attempt < 3) continue;
        throw e;
      }
      nl.request(delSaMessage({ family, dst: lo, spi }, nl.nextSeq()), 'preflight: delete the probe SA');
      return;
    }
  } catch (e) {
    throw explain(e, family);
  } finally {
    if (!transport) nl.close();
  }
}
