// Named errors of the SA layer (sa.ts, sa-set.ts, sad.ts, key-export.ts) and of the pcap codec.
// Expected packet failures are values (drop reasons), never these: these mean misuse or bad input.
// Messages name the field and the value, never key material.
import { ImsecError } from '../util/errors.ts';

/** Codes of {@link IpsecError}: misuse of the SA layer or bad input, never a dropped packet. */
export type IpsecErrorCode =
  /** Seal/open on an SA whose set is deleted or hard-expired. */
  | 'IPSEC_SA_DELETED'
  /** The outbound sequence counter reached 2^32-1 (RFC 4303 §3.3.3: never wrap; re-key). */
  | 'IPSEC_SEQ_EXHAUSTED'
  /** The state store could not persist the sequence-number high-water mark (issue 13 §3): nothing is sent. */
  | 'IPSEC_SEQ_UNRESERVED'
  /** An inbound SPI is already live for that destination in this SAD. */
  | 'IPSEC_SPI_IN_USE'
  /** send() with ports that no outbound SA of the set carries (spec digest §6.2). */
  | 'IPSEC_NO_SA_FOR_PORTS'
  /** SPI 0, 1..255, above 2^32-1, or spi-c = spi-s (RFC 4303 §2.1; 33.203 §7.1). */
  | 'IPSEC_BAD_SPI'
  /** Any other SA-set parameter out of range (ports, addresses, keys, mode). */
  | 'IPSEC_BAD_PARAMS'
  /** An event that the SA-set state machine does not accept in the current state. */
  | 'IPSEC_ILLEGAL_TRANSITION'
  /** The SA set is not (or no longer) installed in this SAD. */
  | 'IPSEC_SET_NOT_INSTALLED'
  /** An esp_sa record that does not parse (key export / decode). */
  | 'IPSEC_BAD_ESP_SA';

/** An error of the SA layer (SA, SA set, SAD, key export); messages never contain keys. */
export class IpsecError extends ImsecError {
  declare readonly code: IpsecErrorCode;
  constructor(code: IpsecErrorCode, message: string) {
    super(code, message);
  }
}

/** Why a capture could not be read. */
export type PcapErrorCode = 'PCAP_BAD_MAGIC' | 'PCAP_MALFORMED' | 'PCAP_UNSUPPORTED_LINKTYPE';

/** A capture file that cannot be read. The reader throws nothing else on garbage. */
export class PcapError extends ImsecError {
  declare readonly code: PcapErrorCode;
  constructor(code: PcapErrorCode, message: string) {
    super(code, message);
  }
}
