// Registrar bindings (RFC 3261 §10.3 simplified, 24.229 §5.4.1.2.2): one registration per IMPI
// binding its whole implicit registration set (every IMPU the HSS lists) to one Contact and Path,
// removed at expiry by the clock. Lookups compare IMPUs by scheme, user and host (impuKey).
import { parseUri, type Clock } from '../sip/index.ts';

/** One IMPU's binding, as the public view shows it. */
export interface Binding {
  readonly impu: string;
  readonly impi: string;
  /** The registered Contact URI (the protected port_us for a UE behind a P-CSCF). */
  readonly contact: string;
  /** Path values as received (RFC 3327), first hop first: the Route of requests towards the UE. */
  readonly path: readonly string[];
  /** Clock time (ms) of expiry. */
  readonly expiresAt: number;
  readonly callId: string;
}

/** What the registrar stores per IMPI. */
export interface Registration {
  readonly impi: string;
  /** The implicit registration set, HSS order. */
  readonly impus: readonly string[];
  readonly contact: string;
  readonly path: readonly string[];
  readonly callId: string;
  /** Granted seconds. */
  readonly expires: number;
  readonly expiresAt: number;
}

/**
 * Comparison key of a public identity: `sip:user@host` (host lower case; sips folded to sip; port,
 * parameters and headers ignored) or `tel:number` without visual separators (RFC 3966 §5.1.1).
 * Anything unparseable compares as written.
 */
export function impuKey(uri: string): string {
  const r = parseUri(uri.trim());
  if (!r.ok) return uri.trim();
  const u = r.value;
  if (u.scheme === 'tel') return `tel:${u.number.replace(/[-.()]/g, '')}`;
  return `sip:${u.user === undefined ? '' : `${u.user}@`}${u.host.toLowerCase()}`;
}

/** Not safe for concurrent use (one event loop owns it). */
export class BindingTable {
  /** The registration, its expiry timer and its IMPUs' impuKeys (parsed once, at bind). */
  readonly #byImpi = new Map<string, { readonly reg: Registration; readonly cancel: () => void; readonly keys: readonly string[] }>();
  /** IMPU (HSS spelling) → binding: the read-only view. */
  readonly #view = new Map<string, Binding>();
  /** impuKey → binding, for routing. */
  readonly #byKey = new Map<string, Binding>();

  constructor(
    private readonly clock: Clock,
    /** A registration ran out (the table already removed it). */
    private readonly onExpire: (reg: Registration) => void,
  ) {}

  /** IMPU → binding. Do not cast it back to a Map. */
  get view(): ReadonlyMap<string, Binding> {
    return this.#view;
  }

  registration(impi: string): Registration | undefined {
    return this.#byImpi.get(impi)?.reg;
  }

  /** The binding of the IMPU `uri` names (any spelling impuKey folds together). */
  lookup(uri: string): Binding | undefined {
    return this.#byKey.get(impuKey(uri));
  }

  /** Stores (or replaces) the IMPI's registration and arms its expiry; true when it replaced one. */
  bind(reg: Registration): boolean {
    const refresh = this.#remove(reg.impi) !== undefined;
    const path = Object.freeze([...reg.path]);
    const keys: string[] = [];
    for (const impu of reg.impus) {
      // An IMPU belongs to one IMPI in our HSS; should another registration hold it, the newest wins.
      const b: Binding = Object.freeze({ impu, impi: reg.impi, contact: reg.contact, path, expiresAt: reg.expiresAt, callId: reg.callId });
      const key = impuKey(impu);
      keys.push(key);
      this.#view.set(impu, b);
      this.#byKey.set(key, b);
    }
    const cancel = this.clock.setTimer(Math.max(0, reg.expiresAt - this.clock.now()), () => {
      if (this.#byImpi.get(reg.impi)?.reg !== reg) return; // refreshed or removed meanwhile
      this.#remove(reg.impi);
      this.onExpire(reg);
    });
    this.#byImpi.set(reg.impi, { reg, cancel, keys });
    return refresh;
  }

  /** Removes the IMPI's registration; returns it, or undefined when there was none. */
  unbind(impi: string): Registration | undefined {
    return this.#remove(impi);
  }

  /** Cancels every expiry timer and forgets everything (shutdown). */
  clear(): void {
    for (const impi of [...this.#byImpi.keys()]) this.#remove(impi);
  }

  #remove(impi: string): Registration | undefined {
    const e = this.#byImpi.get(impi);
    if (!e) return undefined;
    e.cancel();
    this.#byImpi.delete(impi);
    for (let i = 0; i < e.keys.length; i++) {
      const impu = e.reg.impus[i]!;
      if (this.#view.get(impu)?.impi === impi) this.#view.delete(impu);
      const k = e.keys[i]!;
      if (this.#byKey.get(k)?.impi === impi) this.#byKey.delete(k);
    }
    return e.reg;
  }
}
