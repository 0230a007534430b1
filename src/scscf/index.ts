/**
 * imsec/core: the embedded IMS core — an S-CSCF (24.229 §5.4: IMS AKA registrar, bindings, routing
 * of requests along the registered Path) with its HSS/AuC (SQNs per TS 33.102 Annex C, kept in
 * SQLite). Enough for a P-CSCF and UEs to run a whole registration on one machine.
 *
 * @example
 * ```ts
 * import { HssStore, Hss, Scscf } from 'imsec/core';
 * const store = new HssStore(':memory:');
 * store.add({ impi, impus: [impu], k, opc, amf: Uint8Array.of(0x80, 0) });
 * const scscf = await Scscf.start({ address: '127.0.0.1', port: 0, domain: 'ims.example.org', hss: new Hss(store) });
 * ```
 * @module
 */
export { Scscf, type ScscfOptions, type SendMessageOptions, type TransportFactory } from './scscf.ts';
export { Hss, MAX_VECTORS, type HssOptions, type ResyncResult } from './hss.ts';
export {
  HssStore,
  HssStoreError,
  Subscriber,
  SubscriberProfile,
  type AddSubscriber,
  type HssStoreErrorCode,
  type HssStoreOptions,
} from './hss-store.ts';
export type { ScscfEvent, ScscfEventType } from './events.ts';
