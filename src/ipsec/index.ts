/**
 * imsec/ipsec: the algorithm table, 33.203 Annex I key expansion, the SA description, one SA, the
 * 33.203 SA set and its states, the SAD with the inbound pipeline, key export (Wireshark `esp_sa`
 * lines and `ip xfrm` commands: the only place keys become text) and pcap. The ESP engine itself is
 * `imsec/esp`; where SAs are installed is `imsec/backends`.
 *
 * @example
 * ```ts
 * import { expandKeys, espSaLines } from 'imsec/ipsec';
 * const keys = expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc');   // IK_ESP, CK_ESP (Annex I)
 * writeFileSync('esp_sa', espSaLines(saSet).join('\n'));          // for Wireshark / tshark
 * ```
 * @module
 */
export * from './algorithms.ts';
export { expandKeys, kdf, type EspKeys } from './keys.ts';
export { DEFAULT_REPLAY_WINDOW, MIN_REPLAY_WINDOW, NAT_T_PORT, modeFromMod, type EspMode, type SaParams } from './types.ts';
export { IpsecError, PcapError, type IpsecErrorCode, type PcapErrorCode } from './errors.ts';
export {
  ESP_DROPS,
  Sa,
  canonicalAddress,
  emptyDrops,
  sameAddress,
  spiText,
  type SaCounters,
  type SaDeadReason,
  type SaDirection,
  type SaName,
} from './sa.ts';
export {
  SaSet,
  checkSpi,
  createSaSet,
  lifetimeAfterSuccess,
  saParamsOf,
  selectOutbound,
  transition,
  type SaSetAction,
  type SaSetConfig,
  type SaSetEvent,
  type SaSetPeer,
  type SaSetState,
  type SaSetTransition,
  type SaSummaryRow,
} from './sa-set.ts';
export { Sad, type EspArrival, type ReceiveResult, type SadCounters, type SadDrop, type SadOptions } from './sad.ts';
export {
  IMSEC_GMAC_LABEL,
  WIRESHARK_AUTH_LABEL,
  WIRESHARK_ENC_LABEL,
  espSaLines,
  espSaRecord,
  findEspSa,
  parseEspSa,
  tsharkEspArgs,
  xfrmCommands,
  type EspSaEntry,
  type XfrmSa,
} from './key-export.ts';
export {
  LINKTYPE,
  buildPcap,
  openPcapWriter,
  pcapFileHeader,
  pcapRecord,
  readCapture,
  readCaptureOrThrow,
  type CaptureContents,
  type CapturedIp,
  type PcapFileWriter,
} from './pcap.ts';
