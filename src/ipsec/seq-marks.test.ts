// Persisted sequence-number marks (issue 13 §3), checked against what an attacker and a crash can
// do: whatever the traffic, the write-behind timing and the moment of the crash, a set restored from
// what the store held never sends a number it sent before and never accepts a packet it accepted
// before; and the store is written far less often than once per packet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makePair } from '../../test/support/ims-fixture.ts';
import { ReplayWindow } from './esp/replay-window.ts';
import type { SaName } from './sa.ts';
import { restoreSaSet, saSetKeys, saSetRecord, SA_NAMES, encodeKeys, decodeKeys } from './sa-set-record.ts';
import type { SaSet } from './sa-set.ts';
import { Sad } from './sad.ts';
import { SeqMark, type SeqMarkWriter } from './seq-marks.ts';

/** An in-memory store: `durable` is what survives a crash; `pending` what a write-behind has not flushed. */
class FakeStore implements SeqMarkWriter {
  readonly durable = new Map<SeqMark, number>();
  readonly pending = new Map<SeqMark, number>();
  writes = 0;
  failing = false;
  writeNow(mark: SeqMark, value: number): void {
    if (this.failing) throw new Error('store down');
    this.pending.delete(mark);
    this.durable.set(mark, value);
    this.writes++;
  }
  writeLater(mark: SeqMark, value: number): void {
    this.pending.set(mark, value);
  }
  flush(): void {
    if (this.failing) return;
    for (const [m, v] of this.pending) {
      this.durable.set(m, v);
      m.confirm(v);
      this.writes++;
    }
    this.pending.clear();
  }
}

test('a restored replay window refuses every number up to the mark and takes the next one', () => {
  const w = new ReplayWindow(64, 1000);
  for (const s of [1, 936, 937, 999, 1000]) assert.notEqual(w.check(s), 'ok', `seq ${s}`);
  assert.equal(w.check(1001), 'ok');
  w.commit(1001);
  assert.equal(w.check(1001), 'replay');
  assert.equal(new ReplayWindow(64, 0).check(1), 'ok');
});

function pcscfPair(): { ue: SaSet; pcscf: SaSet } {
  const p = makePair({ alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel' });
  p.pcscf.apply('authenticated');
  p.ue.apply('authenticated');
  return p;
}

function track(set: SaSet, store: FakeStore, policy = { outBlock: 16, maxInBlock: 8 }): void {
  for (const sa of set.all) {
    const m = sa.trackSeq(store, sa.direction === 'out' ? sa.seq + policy.outBlock : sa.seq, policy);
    store.durable.set(m, m.durable);
  }
}

/** Sends `n` SIP-sized payloads over `from`'s outbound SA with these ports, captured; delivered to `to` unless `drop`. */
function send(fromSad: Sad, from: SaSet, srcPort: number, dstPort: number, toSad: Sad | undefined): Uint8Array {
  const { udpPayload } = fromSad.send(from, srcPort, dstPort, new TextEncoder().encode('MESSAGE sip:x SIP/2.0\r\n\r\n'));
  if (toSad)
    toSad.receiveEsp({
      src: from.sas.SA1.params.src === from.config.ue.ip && from.role === 'ue' ? from.config.ue.ip : from.config.pcscf.ip,
      dst: from.role === 'ue' ? from.config.pcscf.ip : from.config.ue.ip,
      encap: { srcPort: 4500, dstPort: 4500 },
      esp: udpPayload,
    });
  return udpPayload;
}

test('crash anywhere: the restored P-CSCF set never repeats an outbound number and never accepts a replayed inbound packet', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ dir: fc.constantFrom('up', 'down'), n: fc.integer({ min: 1, max: 40 }), flush: fc.boolean(), tighten: fc.boolean() }),
        { minLength: 1, maxLength: 12 },
      ),
      (steps) => {
        const { ue, pcscf } = pcscfPair();
        const ueSad = new Sad({ now: () => 0 });
        const pSad = new Sad({ now: () => 0 });
        ueSad.install(ue);
        pSad.install(pcscf);
        const store = new FakeStore();
        track(pcscf, store);
        const captured: Uint8Array[] = [];
        const sentDown = new Set<number>();
        let packets = 0;
        for (const st of steps) {
          for (let i = 0; i < st.n; i++) {
            packets++;
            if (st.dir === 'up') captured.push(send(ueSad, ue, ue.config.ue.portC, pcscf.config.pcscf.portS, pSad));
            else {
              send(pSad, pcscf, pcscf.config.pcscf.portC, ue.config.ue.portS, ueSad);
              sentDown.add(pcscf.sas.SA2.seq);
            }
          }
          if (st.flush) store.flush();
          if (st.tighten) for (const sa of pcscf.inbound) sa.seqMark!.tighten();
        }
        // Crash: what was pending is lost. Restore from the durable marks only.
        const marks: Partial<Record<SaName, number>> = {};
        for (const name of SA_NAMES) marks[name] = store.durable.get(pcscf.sas[name].seqMark!)!;
        const back = restoreSaSet(saSetRecord(pcscf), decodeKeys(encodeKeys(saSetKeys(pcscf))), marks);
        const sad2 = new Sad({ now: () => 0 });
        sad2.install(back);
        // Every captured UE packet is refused by the restored set.
        for (const esp of captured) {
          const r = sad2.receiveEsp({ src: ue.config.ue.ip, dst: ue.config.pcscf.ip, encap: { srcPort: 4500, dstPort: 4500 }, esp });
          assert.equal(r.ok, false, 'a replayed packet was accepted after the restart');
        }
        // The restored set's next outbound number was never used.
        sad2.send(back, back.config.pcscf.portC, back.config.ue.portS, new Uint8Array(10));
        assert.ok(!sentDown.has(back.sas.SA2.seq) && back.sas.SA2.seq > Math.max(0, ...sentDown), 'an outbound number repeats');
        // Far fewer writes than packets once traffic is more than a burst.
        if (packets >= 100) assert.ok(store.writes <= packets / 2, `${store.writes} writes for ${packets} packets`);
      },
    ),
    { numRuns: 150, seed: 13 },
  );
});

test('a quiet inbound SA is restored exactly (nothing fresh refused); a busy one loses at most one block', () => {
  const { ue, pcscf } = pcscfPair();
  const ueSad = new Sad({ now: () => 0 });
  const pSad = new Sad({ now: () => 0 });
  ueSad.install(ue);
  pSad.install(pcscf);
  const store = new FakeStore();
  track(pcscf, store, { outBlock: 16, maxInBlock: 8 });
  for (let i = 0; i < 30; i++) send(ueSad, ue, ue.config.ue.portC, pcscf.config.pcscf.portS, pSad);
  const sa1 = pcscf.sas.SA1;
  assert.equal(sa1.seq, 30);
  assert.ok(sa1.seqMark!.durable - 30 < 8, `busy: mark ${sa1.seqMark!.durable} is within one block of 30`);
  sa1.seqMark!.tighten();
  store.flush();
  assert.equal(store.durable.get(sa1.seqMark!), 30, 'after a quiet spell the stored mark is exact');
  // The next packet writes synchronously again, exactly.
  send(ueSad, ue, ue.config.ue.portC, pcscf.config.pcscf.portS, pSad);
  assert.equal(store.durable.get(sa1.seqMark!), 31);
});

test('a store that cannot write: nothing is sent past the mark, nothing accepted past it', () => {
  const { ue, pcscf } = pcscfPair();
  const ueSad = new Sad({ now: () => 0 });
  const pSad = new Sad({ now: () => 0 });
  ueSad.install(ue);
  pSad.install(pcscf);
  const store = new FakeStore();
  track(pcscf, store, { outBlock: 4, maxInBlock: 8 });
  store.failing = true;
  const up = send(ueSad, ue, ue.config.ue.portC, pcscf.config.pcscf.portS, undefined);
  const r = pSad.receiveEsp({ src: ue.config.ue.ip, dst: ue.config.pcscf.ip, encap: { srcPort: 4500, dstPort: 4500 }, esp: up });
  assert.ok(!r.ok && r.drop === 'outside-window');
  for (let i = 0; i < 4; i++) pSad.send(pcscf, pcscf.config.pcscf.portC, ue.config.ue.portS, new Uint8Array(4));
  assert.throws(
    () => pSad.send(pcscf, pcscf.config.pcscf.portC, ue.config.ue.portS, new Uint8Array(4)),
    /IPSEC_SEQ_UNRESERVED|could not reserve/,
  );
});

test('SA set record: JSON round trip, keys apart, state kept; a temporary set is not stored', () => {
  const { pcscf } = makePair({ alg: 'null', ealg: 'aes-gcm', mode: 'transport' });
  assert.throws(() => saSetRecord(pcscf), /only current and old/);
  pcscf.apply('authenticated');
  pcscf.apply('superseded');
  const rec = JSON.parse(JSON.stringify(saSetRecord(pcscf)));
  assert.equal(JSON.stringify(rec).includes('ikEsp'), false);
  const keys = saSetKeys(pcscf);
  const back = restoreSaSet(rec, decodeKeys(encodeKeys(keys)), { SA1: 5, SA2: 7, SA3: 9, SA4: 11 });
  assert.equal(back.state, 'old');
  assert.deepEqual(
    back.summary().map((r) => [r.name, r.spi, r.seq]),
    pcscf.summary().map((r, i) => [r.name, r.spi, [5, 7, 9, 11][i]]),
  );
  assert.deepEqual(decodeKeys(encodeKeys(keys)), keys);
  assert.throws(() => decodeKeys(new Uint8Array([5, 1])), /truncated/);
});
