// Loads the N-API addon built by scripts/build-native.mjs (native/imsec_native.c): netlink
// sockets and the UDP_ENCAP_ESPINUDP socket. Missing addon → XfrmError XFRM_NO_ADDON, once, clearly.
// Also glibc's malloc_trim for the P-CSCF's compaction after a burst (optional: `mallocTrimFunction`).
import { createRequire } from 'node:module';
import { XfrmError, errnoName } from './errors.ts';

export interface ImsecNative {
  netlinkOpen(protocol: number, groups?: number): number;
  netlinkSend(fd: number, bytes: Uint8Array): number;
  netlinkRecv(fd: number, timeoutMs: number): Buffer | null;
  close(fd: number): void;
  espInUdpSocket(family: 4 | 6, address: string, port: number): { fd: number; port: number };
  udpSend(fd: number, address: string, port: number, bytes: Uint8Array): number;
  /** glibc malloc_trim(0): whether memory went back to the OS. Absent when the addon was built against another C library. */
  mallocTrim?(): boolean;
}

export const ADDON_PATH = '../../../../native/build/Release/imsec_native.node';

let cached: ImsecNative | undefined;
let failure: XfrmError | undefined;

/** The addon, or throws XFRM_NO_ADDON naming the file and how to build it. */
export function loadNative(): ImsecNative {
  if (cached) return cached;
  if (failure) throw failure;
  if (process.platform !== 'linux') {
    failure = new XfrmError('XFRM_NO_ADDON', `the xfrm backend needs Linux (this is ${process.platform})`);
    throw failure;
  }
  try {
    // IMSEC_NATIVE_ADDON: an explicit path (e.g. when this module runs from a transpiled copy).
    cached = createRequire(import.meta.url)(process.env.IMSEC_NATIVE_ADDON || ADDON_PATH) as ImsecNative;
    return cached;
  } catch (e) {
    failure = new XfrmError(
      'XFRM_NO_ADDON',
      `the xfrm backend needs the imsec native addon (native/build/Release/imsec_native.node), which is not built: ` +
        `run \`node scripts/build-native.mjs\` (needs a C compiler, make and python3) — ${(e as Error).message.split('\n')[0]}`,
    );
    throw failure;
  }
}

/** Whether the addon loads (for tests that skip without it). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/**
 * The addon's malloc_trim (issue 9 §2: after a compaction, the pages glibc's arenas kept from a
 * burst go back to the OS), or undefined where the addon is not built or has none: the caller
 * then goes without, nothing else changes.
 */
export function mallocTrimFunction(): (() => boolean) | undefined {
  try {
    const n = loadNative();
    return typeof n.mallocTrim === 'function' ? () => n.mallocTrim!() : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a native call; a thrown errno error becomes XfrmError XFRM_SYSCALL with the errno's name. */
export function sys<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno === 'number') throw new XfrmError('XFRM_SYSCALL', `${what}: ${errnoName(errno)} (${(e as Error).message})`, errno);
    throw e;
  }
}
