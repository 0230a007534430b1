// The P-CSCF's Prometheus metrics. Nothing here runs per ESP packet: packet, byte, drop and
// keepalive counts are read at scrape time from the counters the SAs and the backend keep anyway
// (collect callbacks); registrations, sec-agree, NAT and rejection counts follow the events the
// P-CSCF already emits (one increment per event, not per packet).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { IpsecBackend, SaStats } from '../ipsec/backends/backend.ts';
import { ESP_DROPS } from '../ipsec/sa.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import type { EspDrop } from '../ipsec/esp/index.ts';
import type { PcscfEventName, PcscfEvents } from '../pcscf/index.ts';
import type { EspDropReporter } from './esp-drops.ts';

export interface EspTotals {
  inPackets: number;
  inBytes: number;
  outPackets: number;
  outBytes: number;
}

/** What the reader needs of a backend: its sets and their per-SA counters (the kernel's for xfrm). */
export type EspTotalsSource = Pick<IpsecBackend, 'sets' | 'saStats'>;

/**
 * Totals over every SA set the backend has had: the live sets' counters as the backend reports them
 * (`saStats`: the SAD's for userspace and memory, the kernel's for xfrm) plus those of sets gone
 * since, at their final values (`Sa.counters`, which the xfrm backend fills from the kernel a last
 * time before it removes a set), so the sums never go down when a set is deleted.
 */
export class EspTotalsReader {
  readonly #retired: EspTotals = zeroTotals();
  #seen = new Set<SaSet>();
  #last: { at: number; t: EspTotals } | undefined;

  /** One pass over the sets per scrape: the metrics that share it reuse a read younger than 100 ms. */
  read(backend: EspTotalsSource): EspTotals {
    const now = Date.now();
    if (this.#last && now - this.#last.at < 100) return this.#last.t;
    const sets = backend.sets;
    const live = new Set(sets);
    for (const s of this.#seen) if (!live.has(s)) addFinal(this.#retired, s);
    this.#seen = live;
    const t = { ...this.#retired };
    for (const s of sets) addLive(t, s, backend.saStats(s));
    this.#last = { at: now, t };
    return t;
  }
}

function zeroTotals(): EspTotals {
  return { inPackets: 0, inBytes: 0, outPackets: 0, outBytes: 0 };
}
function add(t: EspTotals, direction: 'in' | 'out', packets: number, bytes: number): void {
  if (direction === 'in') {
    t.inPackets += packets;
    t.inBytes += bytes;
  } else {
    t.outPackets += packets;
    t.outBytes += bytes;
  }
}
function addLive(t: EspTotals, s: SaSet, stats: readonly SaStats[]): void {
  for (const st of stats) add(t, s.sas[st.name].direction, st.packets, st.bytes);
}
function addFinal(t: EspTotals, s: SaSet): void {
  for (const sa of s.all) add(t, sa.direction, sa.counters.packets, sa.counters.bytes);
}

/** Rejection reasons that are a limit refusing work (admission control), not a protocol error. */
export const isLimitReason = (reason: string): boolean => /^(?:overload|admission)-/.test(reason);

type On = <K extends PcscfEventName>(name: K, fn: (ev: PcscfEvents[K]) => void) => unknown;

export interface PcscfMetricsSources {
  readonly registry: Registry;
  readonly backend: IpsecBackend;
  /** `pcscf.on`. */
  readonly on: On;
  /** Counts every inbound ESP drop by reason (it logs them, rate-limited). */
  readonly drops: EspDropReporter;
  /** IMPIs already registered when the metrics start (restored from the state store, issue 13 §3). */
  readonly registered?: Iterable<string>;
}

/** Registers the P-CSCF metrics on `registry`, fed by `on` events and read from `backend` at scrape time. */
export function registerPcscfMetrics(s: PcscfMetricsSources): void {
  const { registry: r, backend, on, drops } = s;
  const esp = new EspTotalsReader();
  const registers = [r];
  // Registration state from events: an IMPI is registered from 'registered' to 'deregistered'.
  const registered = new Set<string>(s.registered ?? []);
  const temporary = new Set<string>();
  on('registered', (e) => registered.add(e.impi));
  on('deregistered', (e) => registered.delete(e.impi));

  new Gauge({
    name: 'imsec_pcscf_registrations',
    help: 'Registrations by state (pending: a temporary SA set waits for the protected REGISTER)',
    labelNames: ['state'],
    registers,
    collect() {
      this.set({ state: 'registered' }, registered.size);
      this.set({ state: 'pending' }, temporary.size);
    },
  });
  new Gauge({
    name: 'imsec_pcscf_pending_registrations',
    help: 'Registrations waiting for the protected REGISTER (temporary SA sets live)',
    registers,
    collect() {
      this.set(temporary.size);
    },
  });
  new Gauge({
    name: 'imsec_pcscf_sa_sets',
    help: 'SA sets installed, by state and mode',
    labelNames: ['state', 'mode'],
    registers,
    collect() {
      this.reset();
      const n = new Map<string, number>();
      for (const set of backend.sets) {
        const k = `${set.state}\0${set.config.mode}`;
        n.set(k, (n.get(k) ?? 0) + 1);
      }
      for (const [k, v] of n) {
        const [state, mode] = k.split('\0') as [string, string];
        this.set({ state, mode }, v);
      }
    },
  });

  const registrations = new Counter({
    name: 'imsec_pcscf_registrations_total',
    help: 'Successful REGISTERs (initial and refresh; rate() gives registrations/s)',
    registers,
  });
  on('registered', () => registrations.inc());
  const deregistrations = new Counter({ name: 'imsec_pcscf_deregistrations_total', help: 'Registrations ended', registers });
  on('deregistered', () => deregistrations.inc());

  const secAgree = new Counter({
    name: 'imsec_pcscf_secagree_total',
    help: 'SA sets negotiated (sec-agree), by chosen algorithm pair and mode',
    labelNames: ['alg', 'ealg', 'mode'],
    registers,
  });
  on('sa-created', (e) => {
    temporary.add(e.set);
    secAgree.inc({ alg: e.alg, ealg: e.ealg, mode: e.mode });
  });
  const authTimeouts = new Counter({
    name: 'imsec_pcscf_auth_timeouts_total',
    help: 'Temporary SA sets that expired without a protected REGISTER (reg-await-auth: the UE never answered the challenge)',
    registers,
  });
  on('sa-promoted', (e) => temporary.delete(e.set));
  const removalFailures = new Counter({
    name: 'imsec_pcscf_sa_removal_failures_total',
    help: 'SA sets the backend failed to remove (kernel SAs or policies may be left behind; each one logged at error)',
    registers,
  });
  on('sa-deleted', (e) => {
    if (temporary.delete(e.set) && e.code === 'auth-timeout') authTimeouts.inc();
    if (e.error !== undefined) removalFailures.inc();
  });

  const rejections = new Counter({
    name: 'imsec_pcscf_rejections_total',
    help: 'Requests refused, by reason and status (494: sec-agree failed)',
    labelNames: ['reason', 'status'],
    registers,
  });
  const limits = new Counter({
    name: 'imsec_pcscf_limit_rejections_total',
    help: 'Requests refused by a limit (admission control), by reason',
    labelNames: ['reason'],
    registers,
  });
  on('rejected', (e) => {
    rejections.inc({ reason: e.reason, status: e.status === undefined ? 'none' : String(e.status) });
    if (isLimitReason(e.reason)) limits.inc({ reason: e.reason });
  });

  const nat = new Counter({
    name: 'imsec_pcscf_nat_detections_total',
    help: 'UEs found behind a NAT (Via sent-by ≠ packet source, 33.203 Annex M)',
    registers,
  });
  on('nat-detected', () => nat.inc());
  const rebinds = new Counter({
    name: 'imsec_pcscf_nat_rebinds_total',
    help: 'NAT mapping changes seen on authenticated ESP-in-UDP (followed: port_Uenc updated)',
    labelNames: ['followed'],
    registers,
  });
  on('nat-mapping', (e) => {
    if (e.previous) rebinds.inc({ followed: String(e.followed) });
  });

  // Scrape-time reads of counters the backend and the SAs keep for their own reasons.
  new Counter({
    name: 'imsec_pcscf_keepalives_total',
    help: 'NAT-keepalives (RFC 3948 §2.3), by direction',
    labelNames: ['dir'],
    registers,
    collect() {
      const c = backend.counters;
      this.reset();
      this.inc({ dir: 'in' }, c.keepalive);
      this.inc({ dir: 'out' }, c.keepalivesSent ?? 0);
    },
  });
  new Counter({
    name: 'imsec_esp_packets_total',
    help: "ESP packets sealed (out) or delivered (in); with the xfrm backend, the kernel's counts (ip -s xfrm state)",
    labelNames: ['dir'],
    registers,
    collect() {
      const t = esp.read(backend);
      this.reset();
      this.inc({ dir: 'in' }, t.inPackets);
      this.inc({ dir: 'out' }, t.outPackets);
    },
  });
  new Counter({
    name: 'imsec_esp_bytes_total',
    help: 'Inner payload octets sealed (out) or delivered (in)',
    labelNames: ['dir'],
    registers,
    collect() {
      const t = esp.read(backend);
      this.reset();
      this.inc({ dir: 'in' }, t.inBytes);
      this.inc({ dir: 'out' }, t.outBytes);
    },
  });
  new Counter({
    name: 'imsec_esp_drops_total',
    help: 'Inbound packets dropped, by reason (replay, icv, unknown-spi, malformed, …; keepalives are not drops)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const d of ESP_DROPS) this.inc({ reason: d }, 0);
      for (const [reason, n] of Object.entries(drops.counts)) if (reason !== 'keepalive') this.inc({ reason }, n ?? 0);
    },
  });
}
