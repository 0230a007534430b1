// `imsec pcscf --state`: opens the P-CSCF state store the flag names (an SQLite file, created 0600,
// or a postgres:// URL) with the key sealer of --state-key-file / IMSEC_STATE_KEY, and settles the
// protected ports with the stored ones (the restored SAs are bound to them).
import { PcscfState } from '../pcscf/state.ts';
import { sealerFrom } from '../pcscf/state-keys.ts';
import { isPostgresState, type PcscfStateStore } from '../pcscf/state-store.ts';
import { PgStateStore } from '../pcscf/state-store-pg.ts';
import { SqliteStateStore } from '../pcscf/state-store-sqlite.ts';
import type { Clock } from '../util/clock.ts';
import { ImsecError, InputError } from '../util/errors.ts';
import { redactDbUrl } from './hss-db.ts';

export function openStateStore(state: string): PcscfStateStore {
  try {
    return isPostgresState(state) ? new PgStateStore(state) : new SqliteStateStore(state);
  } catch (err) {
    if (err instanceof ImsecError && err.code !== 'PG_ERROR') throw err;
    throw new InputError(`--state: cannot open ${redactDbUrl(state)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface OpenedState {
  readonly state: PcscfState;
  readonly portC: number;
  readonly portS: number;
}

/** Opens the store and picks port_pc/port_ps: as given, else as stored; a given port unlike the stored one is refused. */
export function openPcscfState(o: {
  state: string;
  stateKeyFile?: string;
  node: string;
  portC: number;
  portS: number;
  clock: Clock;
  onError: (what: string, e: Error) => void;
}): OpenedState {
  const sealer = sealerFrom({ ...(o.stateKeyFile !== undefined && { file: o.stateKeyFile }) });
  const store = openStateStore(o.state);
  const state = new PcscfState({ store, sealer, node: o.node, clock: o.clock, onError: o.onError });
  try {
    const stored = state.nodeInfo();
    const pick = (given: number, was: number | undefined, flag: string): number => {
      if (was === undefined || given === 0) return given || (was ?? 0);
      if (given !== was)
        throw new InputError(
          `${flag} ${given}: the stored registrations of ${o.node} use ${was} (their SAs are bound to it); start with ${flag} ${was}`,
        );
      return given;
    };
    return { state, portC: pick(o.portC, stored?.portC, '--port-c'), portS: pick(o.portS, stored?.portS, '--port-s') };
  } catch (e) {
    state.close();
    throw e;
  }
}
