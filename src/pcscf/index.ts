// Public API of the P-CSCF (33.203 access edge): start/stop, the registration view, counters and
// events; the pure decision and rewrite helpers for tests and tools.
export { Pcscf, PCSCF_EVENT_NAMES, REG_AWAIT_AUTH_MS } from './pcscf.ts';
export type {
  PcscfCounters,
  PcscfEventName,
  PcscfEvents,
  PcscfMode,
  PcscfOptions,
  RegistrationView,
  RejectReason,
  Source,
} from './types.ts';
export { MAX_SAS_PER_DIRECTION, admissionCheck, detectNat, isDeregistration, wantsUdpEncTun } from './decisions.ts';
export { memoryEdge, udpEdge, type PcscfEdge } from './server.ts';
export { DEFAULT_PENDING_LIMITS, PendingLimits, type PendingLimitsConfig } from './pending-limits.ts';
