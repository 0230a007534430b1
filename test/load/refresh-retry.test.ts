// The load engine's failed refresh, against our P-CSCF and S-CSCF/HSS on loopback: a UDP relay
// between the P-CSCF and the S-CSCF answers 500 to chosen REGISTERs or drops them (and the
// P-CSCF's retransmissions of them: the UE times out); everything else passes to the S-CSCF,
// whose responses go straight back to the P-CSCF by its Via. A refresh that fails
// while the registration is still valid must be tried again before the expiry and, when that
// works, keep the registration; a UE whose every retry fails must be counted once, as
// refresh:retries_exhausted, before the expiry — not later as an expiry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { DOMAIN, K, OPC, startWorld, subscriber, until } from '../support/ims-world.ts';
import { LoadEngine } from '../../src/load/engine.ts';
import { commonKeys } from '../../src/load/keys.ts';
import { subscriberRange } from '../../src/load/pattern.ts';
import { buildReport } from '../../src/load/report.ts';
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { createResponse, parseMessage, serializeMessage, SipRequest } from '../../src/sip/index.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { systemClock } from '../../src/util/clock.ts';

interface Seen {
  readonly user: string;
  /** This UE's REGISTERs so far, this one included (1: initial, 2: its protected REGISTER, 3: the first refresh's). */
  readonly nth: number;
  readonly at: number;
  readonly fate: Fate;
}

type Fate = 'pass' | 'reject' | 'drop';

/** P-CSCF → relay → S-CSCF; `fate(user, nth)` says which REGISTERs get a 500 from the relay instead, or nothing. */
class Relay {
  readonly seen: Seen[] = [];
  readonly #sock: Socket;
  readonly #count = new Map<string, number>();
  /** Call-ID and CSeq of the dropped requests: their retransmissions are dropped too (and not counted). */
  readonly #dropped = new Set<string>();
  target: { address: string; port: number } | undefined;
  #pcscf: RemoteInfo | undefined;

  private constructor(
    sock: Socket,
    readonly fate: (user: string, nth: number) => Fate,
  ) {
    this.#sock = sock;
    sock.on('message', (buf, from) => this.#onMessage(buf, from));
  }

  static async start(fate: (user: string, nth: number) => Fate): Promise<Relay> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    return new Relay(sock, fate);
  }

  get address(): { address: string; port: number } {
    const a = this.#sock.address();
    return { address: a.address, port: a.port };
  }

  #onMessage(buf: Buffer, from: RemoteInfo): void {
    const t = this.target!;
    if (from.port === t.port && from.address === t.address) {
      // Should the S-CSCF answer the source instead of the Via: back to the P-CSCF.
      if (this.#pcscf) this.#sock.send(buf, this.#pcscf.port, this.#pcscf.address);
      return;
    }
    this.#pcscf = from;
    const m = parseMessage(buf);
    if (m.ok && m.value instanceof SipRequest && m.value.method === 'REGISTER') {
      const key = `${m.value.headers.get('Call-ID')} ${m.value.headers.get('CSeq')}`;
      if (this.#dropped.has(key)) return;
      const user = /sip:([^@;>]+)@/.exec(m.value.headers.get('From') ?? '')?.[1] ?? '?';
      const nth = (this.#count.get(user) ?? 0) + 1;
      this.#count.set(user, nth);
      const fate = this.fate(user, nth);
      this.seen.push({ user, nth, at: performance.now(), fate });
      if (fate === 'drop') {
        this.#dropped.add(key);
        return;
      }
      if (fate === 'reject') {
        this.#sock.send(serializeMessage(createResponse(m.value, 500, 'Server Internal Error')), from.port, from.address);
        return;
      }
    }
    this.#sock.send(buf, t.port, t.address);
  }

  of(user: string): Seen[] {
    return this.seen.filter((s) => s.user === user);
  }

  close(): Promise<void> {
    return new Promise((r) => this.#sock.close(() => r()));
  }
}

const user = (i: number) => /^sip:([^@]+)@/.exec(subscriber(i).impu)![1]!;

test('a failed refresh (500, timeout) is retried before the expiry and keeps the registration; all retries failing counts once as refresh:retries_exhausted', async () => {
  const EXPIRES_S = 12; // refresh at 6 s
  const RETRY_MS = 1000;
  const T1_MS = 40; // the UEs' Timer F: 64·T1 = 2.56 s
  const [ue1, ue2, ue3] = [user(1), user(2), user(3)];
  // UE 1: its first refresh gets a 500. UE 2: every refresh and retry gets a 500. UE 3: the
  // protected REGISTER of its first refresh (over the new temporary set) is dropped: the UE times
  // out (a refresh's first REGISTER timing out would make the UE register again from scratch by
  // itself, digest §8 rule 6: no failure). UE 4: nothing.
  const relay = await Relay.start((u, nth) =>
    (u === ue1 && nth === 3) || (u === ue2 && nth >= 3) ? 'reject' : u === ue3 && nth === 4 ? 'drop' : 'pass',
  );
  const w = await startWorld({ subscribers: 4, scscfHop: relay.address });
  relay.target = w.scscf.local;
  const backend = await UserspaceBackend.create({ localIp: w.ip, encapPort: 0, clock: systemClock });
  try {
    const engine = new LoadEngine({
      range: subscriberRange({ impi: `00101{n:10}@${DOMAIN}`, first: 1, count: 4 }),
      keys: commonKeys({ k: fromHex(K), opc: fromHex(OPC) }),
      pcscf: { address: w.ip, port: w.pcscf.port },
      pcscfEncapPort: w.pcBackend.encapPort,
      locals: [{ ip: w.ip, backend }],
      modes: ['UDP-enc-tun'],
      rate: 100,
      rampMs: 0,
      concurrency: 10,
      // Past UE 2's expiry (12 s), so its SA sets are gone when the run ends.
      holdMs: 13_500,
      expires: EXPIRES_S,
      refreshRetryMs: RETRY_MS,
      // More than fit before the expiry: UE 2's retries stop because of the expiry, not the count.
      refreshRetries: 10,
      messageRate: 0,
      churnRate: 0,
      deregister: true,
      intervalMs: 1000,
      t1Ms: T1_MS,
    });
    await engine.run();
    const report = buildReport({
      stats: engine.stats,
      startedAt: new Date(),
      endedAt: new Date(),
      config: {},
      ues: 4,
      process: { cpu_user_ms: 0, cpu_system_ms: 0, rss_max_bytes: 0, rss_end_bytes: 0 },
      interrupted: false,
      saSetsLeft: engine.setsLeftAtEnd,
    });
    const log = JSON.stringify(relay.seen.map((s) => [s.user.slice(-1), s.nth, Math.round(s.at), s.fate]));

    // UE 1 (500) and UE 3 (timeout): the refresh fails at ~6 s, the retry comes the retry delay
    // after the failure (for UE 3: after its Timer F), before the expiry (at least 12 s after its
    // protected REGISTER was sent: the grant starts at the 200), and its challenge is answered.
    for (const [who, failedNth, failedAfter] of [
      [ue1, 3, 0],
      [ue3, 4, 64 * T1_MS],
    ] as const) {
      const seen = relay.of(who);
      const registeredAt = seen.find((s) => s.nth === 2)!.at;
      const failed = seen.find((s) => s.nth === failedNth)!;
      const retry = seen.find((s) => s.nth === failedNth + 1);
      assert.ok(retry, `UE ${who} retried its refresh: ${log}`);
      // Timer F runs from the UE's send; the relay sees the request after its way through the
      // P-CSCF (a fraction of a second on a loaded machine): hence the slack for the timeout.
      const gap = retry.at - failed.at;
      const slack = failedAfter > 0 ? 500 : 50;
      assert.ok(
        gap >= failedAfter + RETRY_MS - slack,
        `UE ${who}: the retry ${gap} ms after the failed try, not sooner: ${log} ${JSON.stringify(report.failures)}`,
      );
      assert.ok(retry.at < registeredAt + EXPIRES_S * 1000, `UE ${who}: the retry is before the expiry: ${log}`);
      assert.ok(
        retry.fate === 'pass' && seen.some((s) => s.nth === failedNth + 2),
        `UE ${who}: the retry's challenge was answered: ${log}`,
      );
    }

    // UE 2: the refresh and every retry rejected, each before the expiry; retries stop because of
    // the expiry (at most (12 s - 6 s - 1 s) / 1 s of them), long before the count of 10.
    const s2 = relay.of(ue2);
    const reg2 = s2.find((s) => s.nth === 2)!.at;
    const tries2 = s2.filter((s) => s.nth >= 3);
    assert.ok(
      tries2.every((s) => s.fate === 'reject' && s.at < reg2 + EXPIRES_S * 1000),
      log,
    );
    const retries2 = tries2.length - 1;
    assert.ok(retries2 >= 3 && retries2 <= 5, `UE 2 retried ${retries2} times: ${log}`);

    // The report: every failed try under its reason; the recoveries and UE 2's loss as their own
    // outcomes; no expiry blamed, nothing else failed.
    assert.deepEqual(
      report.failures,
      { 'refresh:status_500': 1 + tries2.length, 'refresh:timeout': 1, 'refresh:retries_exhausted': 1 },
      log,
    );
    assert.equal(report.failures_total, 3 + tries2.length);
    assert.equal(report.outcomes.registered, 4);
    assert.equal(report.outcomes.refresh_retries, 2 + retries2);
    assert.equal(report.outcomes.refresh_recovered, 2);
    assert.ok(report.outcomes.refreshed >= 3, `UE 1's and UE 3's retries, UE 4's refresh: ${report.outcomes.refreshed}`);
    assert.equal(report.outcomes.deregistered, 3, 'UE 1, 3 and 4 were still registered at the end; UE 2 was not');
    assert.equal(report.sa_sets_left, 0, "UE 2's sets went at its expiry");
    // The registrar: UE 1, 3 and 4 de-registered, UE 2's registration ran out. The P-CSCF keeps UE 2's
    // one set until expires + 30 s (spec digest §8 rule 3); the others' went with their de-registration.
    await until(() => w.scscf.bindings.size === 0, 'no binding left at the S-CSCF', 10_000);
    await until(() => w.liveSets(w.pcBackend).length === 1, "only UE 2's set left at the P-CSCF", 10_000);
  } finally {
    await backend.close().catch(() => {});
    await w.close();
    await relay.close();
  }
});
