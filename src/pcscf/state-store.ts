// The P-CSCF state store (issue 13 §3–4): registrations and their SA sets, kept so that a restarted
// P-CSCF (or another instance taking over its address) serves the same UEs without a
// re-registration. One interface, two implementations: SQLite (state-store-sqlite.ts, the embedded
// default: `--state FILE`) and PostgreSQL (state-store-pg.ts: `--state postgres://…`, shared by
// several P-CSCFs). Synchronous like the HSS store: a sequence-number mark past what is durable
// must be written before the packet goes out or is accepted (seq-marks.ts).
//
// Rows belong to a node — the P-CSCF's plain listen address and port — so P-CSCFs sharing one
// database each restore their own registrations, and an instance started on a dead one's address
// takes over exactly those. Keys are stored sealed (state-keys.ts); marks live in their own rows
// because they change far more often than the rest.
import type { SaName } from '../ipsec/sa.ts';
import type { SaSetRecord } from '../ipsec/sa-set-record.ts';
import { ImsecError } from '../util/errors.ts';

export class StateStoreError extends ImsecError {
  constructor(code: 'STATE_SCHEMA' | 'STATE_BAD_ROW', message: string) {
    super(code, message);
  }
}

/** What a registration is besides its sets (no keys). Plain JSON. */
export interface RegistrationRecord {
  readonly v: 1;
  readonly impi: string;
  /** Registration expiry and the current set's lifetime: clock ms in memory, wall-clock ms in the store. */
  readonly expiresAt: number;
  readonly lifetime: number;
  /** The rest of the registration as the registration machine holds it (no keys, no times). */
  readonly bound: Readonly<Record<string, unknown>>;
  /** The UE's ESP-in-UDP source learnt from authenticated packets (Annex M). */
  readonly encap?: { readonly address: string; readonly port: number };
}

export interface StoredSet {
  /** Unique in the database: node, spi_pc, spi_ps (the P-CSCF's inbound SPIs, unique per address). */
  readonly key: string;
  readonly record: SaSetRecord;
  /** The keys as the sealer left them. */
  readonly keys: Uint8Array;
  readonly marks: Readonly<Record<SaName, number>>;
}

export interface StoredRegistration {
  readonly record: RegistrationRecord;
  readonly sets: readonly StoredSet[];
}

/** The P-CSCF's own ports of the run that stored the registrations (the SAs are bound to them). */
export interface NodeInfo {
  readonly portC: number;
  readonly portS: number;
}

export interface MarkWrite {
  readonly setKey: string;
  readonly sa: SaName;
  readonly mark: number;
}

export interface PcscfStateStore {
  readonly kind: 'sqlite' | 'postgres';
  node(node: string): NodeInfo | undefined;
  setNode(node: string, info: NodeInfo): void;
  /** Every registration of `node`, with its sets. */
  load(node: string): StoredRegistration[];
  /** Writes a registration and replaces its sets (one transaction). */
  put(node: string, reg: StoredRegistration): void;
  /** Forgets a registration and its sets. */
  remove(node: string, impi: string): void;
  /** Runs `fn` as one transaction when the store can nest its own in it (SQLite); absent: each call commits alone. */
  batch?<T>(fn: () => T): T;
  /** Sequence-number marks, one transaction; a mark of a set no longer stored is ignored. */
  writeMarks(marks: readonly MarkWrite[]): void;
  close(): void;
}

export function setKeyOf(node: string, spiPc: number, spiPs: number): string {
  return `${node}|${spiPc}|${spiPs}`;
}

/** Parses a JSON column (a row this imsec did not write is a clear error, not a crash later). */
export function parseJsonColumn<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new StateStoreError('STATE_BAD_ROW', `state store: ${what} is not valid JSON`);
  }
}

/** Whether `--state` names a PostgreSQL database rather than an SQLite file. */
export function isPostgresState(state: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(state);
}
