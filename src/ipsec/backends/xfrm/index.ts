// The xfrm IPsec backend (Linux kernel SAs over NETLINK_XFRM): what callers import. The codec
// modules (netlink.ts, structs.ts, messages.ts) are pure and can be imported on any platform.
export { XfrmBackend, type XfrmBackendCounters, type XfrmBackendOptions, type XfrmSaStats } from './backend.ts';
export type { KernelEvent } from './events.ts';
export { XfrmError, type XfrmErrorCode } from './errors.ts';
export { nativeAvailable } from './native.ts';
export type { ReconcileResult } from './reconcile.ts';
export { TAG_MAGIC, isImsecTag, ownerTag } from './plan.ts';
export type { ProtectedTcpOptions, ProtectedTcpTransport } from './tcp.ts';
