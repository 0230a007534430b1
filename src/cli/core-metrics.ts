// The core's (S-CSCF + HSS) Prometheus metrics, fed by the events the S-CSCF already emits and by
// counting vectors where the HSS hands them out: one increment per event, nothing per packet.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuthVector } from '../aka/index.ts';
import type { ScscfCounters, ScscfEvent } from '../scscf/events.ts';
import { Hss } from '../scscf/hss.ts';

/** An Hss that counts the vectors it issues (HSS vectors issued). */
export class CountingHss extends Hss {
  vectorsIssued = 0;
  override authenticate(impi: string, n = 1): AuthVector[] {
    const v = super.authenticate(impi, n);
    this.vectorsIssued += v.length;
    return v;
  }
}

/**
 * Authentication failures as an operator names them: wrong_res (RES ≠ XRES), mac (the UE refused
 * our AUTN: empty response), sync (the UE's SQN was out of range: a resync), mac_s (a bad AUTS),
 * unknown_user, impu_mismatch, bad_credentials. Timeouts (no answer to a challenge) are counted at
 * the P-CSCF (imsec_pcscf_auth_timeouts_total), where the temporary SA set expires.
 */
const FAIL_LABEL: Record<string, string> = { wrong_response: 'wrong_res', empty_response: 'mac', mac_s_failure: 'mac_s' };

export function registerCoreMetrics(r: Registry, hss: CountingHss, counters: () => Readonly<ScscfCounters>): (e: ScscfEvent) => void {
  const registers = [r];
  const bindings = new Set<string>();
  new Gauge({
    name: 'imsec_core_registrations',
    help: 'IMPIs with a binding (registered at the S-CSCF)',
    registers,
    collect() {
      this.set(bindings.size);
    },
  });
  const registrations = new Counter({
    name: 'imsec_core_registrations_total',
    help: 'Successful REGISTERs, by kind (initial, refresh); rate() gives registrations/s',
    labelNames: ['kind'],
    registers,
  });
  const deregistrations = new Counter({
    name: 'imsec_core_deregistrations_total',
    help: 'Bindings removed, by reason (user, expired)',
    labelNames: ['reason'],
    registers,
  });
  const challenges = new Counter({
    name: 'imsec_core_challenges_total',
    help: '401 challenges sent, by reason',
    labelNames: ['reason'],
    registers,
  });
  const authFailures = new Counter({
    name: 'imsec_core_auth_failures_total',
    help: 'Authentication failures by reason (wrong_res, mac, sync, mac_s, unknown_user, …)',
    labelNames: ['reason'],
    registers,
  });
  const messages = new Counter({
    name: 'imsec_core_requests_total',
    help: 'Non-REGISTER requests by method and route (proxied, answered, rejected, network)',
    labelNames: ['method', 'route'],
    registers,
  });
  new Counter({
    name: 'imsec_hss_vectors_issued_total',
    help: 'Authentication vectors issued by the HSS (each with its own SQN)',
    registers,
    collect() {
      this.reset();
      this.inc(hss.vectorsIssued);
    },
  });
  new Counter({
    name: 'imsec_core_internal_errors_total',
    help: 'Requests answered 500 because the store or the code threw',
    registers,
    collect() {
      this.reset();
      this.inc(counters().internalErrors);
    },
  });
  return (e) => {
    switch (e.type) {
      case 'registered':
        bindings.add(e.impi);
        registrations.inc({ kind: e.refresh ? 'refresh' : 'initial' });
        return;
      case 'deregistered':
        bindings.delete(e.impi);
        deregistrations.inc({ reason: e.reason });
        return;
      case 'challenge':
        challenges.inc({ reason: e.reason });
        return;
      case 'auth-failed':
        authFailures.inc({ reason: FAIL_LABEL[e.reason] ?? e.reason });
        return;
      case 'resync':
        authFailures.inc({ reason: 'sync' });
        return;
      case 'message':
        messages.inc({ method: /^[A-Z]{2,12}$/.test(e.method) ? e.method : 'other', route: e.route });
        return;
    }
  };
}
