/**
 * imsec/backends: where the SAs of a UE or P-CSCF live. Both implement {@link IpsecBackend}:
 * - {@link UserspaceBackend}: imsec's own ESP engine on ordinary sockets (ESP in UDP, RFC 3948,
 *   needs no privilege; transport mode over raw IP protocol 50 needs CAP_NET_RAW);
 * - {@link XfrmBackend}: Linux kernel SAs and policies over NETLINK_XFRM (needs CAP_NET_ADMIN, a
 *   kernel with ESP, and the native addon the package builds when installed).
 * @module
 */
export type { Addr, BackendCounters, IpsecBackend, ProtectedContext, ProtectedEndpoint, ProtectedHandler } from './backend.ts';
export { BackendError, type BackendErrorCode } from './errors.ts';
export { UserspaceBackend, type UserspaceBackendOptions } from './userspace.ts';
export { XfrmBackend, XfrmError, nativeAvailable, type XfrmBackendOptions, type XfrmErrorCode } from './xfrm/index.ts';
// Every backend reads time through a Clock (the same one as the UE's or P-CSCF's).
export { ManualClock, systemClock, type Clock } from '../../util/clock.ts';
