// The netlink request loop against a scripted fake of the addon: ACKs, kernel errors with their
// errno and extended-ack text, stale answers, multicast messages in between, dumps over several
// datagrams, NLM_F_DUMP_INTR, GET of an absent SA, timeouts, and request buffers zeroed after send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XfrmError } from './errors.ts';
import type { ImsecNative } from './native.ts';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  encodeAttrs,
  encodeMessage,
} from './netlink.ts';
import { XfrmNetlink } from './socket.ts';

type Answer = (req: { type: number; seq: number }) => Uint8Array[];

function fake(answer: Answer) {
  const sent: Uint8Array[] = [];
  const queue: Uint8Array[] = [];
  const native: ImsecNative = {
    netlinkOpen: () => 42,
    netlinkSend: (_fd, b) => {
      sent.push(b);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      queue.push(...answer({ type: dv.getUint16(4, true), seq: dv.getUint32(8, true) }));
      return b.length;
    },
    netlinkRecv: () => {
      const b = queue.shift();
      return b ? Buffer.from(b) : null;
    },
    close: () => {},
    espInUdpSocket: () => ({ fd: 1, port: 1 }),
    udpSend: () => 0,
  };
  return { nl: new XfrmNetlink({ native, timeoutMs: 50 }), sent };
}

function errMsg(seq: number, errno: number, text?: string): Uint8Array {
  const body = new Uint8Array(20);
  const dv = new DataView(body.buffer);
  dv.setInt32(0, -errno, true);
  dv.setUint32(4, 16, true);
  dv.setUint32(12, seq, true);
  const tlv = text ? encodeAttrs([{ type: 1, value: new Uint8Array(Buffer.from(`${text}\0`)) }]) : new Uint8Array(0);
  return encodeMessage({
    type: NLMSG_ERROR,
    flags: NLM_F_CAPPED | (text ? NLM_F_ACK_TLVS : 0),
    seq,
    body: new Uint8Array([...body, ...tlv]),
  });
}

const req = (nl: XfrmNetlink, type = 0x10) => encodeMessage({ type, flags: 5, seq: nl.nextSeq(), body: new Uint8Array([1, 2, 3, 4]) });

test('request resolves on the ACK with its seq, ignoring stale answers and keeping multicast ones for poll()', () => {
  const { nl, sent } = fake(({ seq }) => [
    errMsg(seq - 1, 17), // a late answer to an earlier request: not ours
    encodeMessage({ type: 0x26, flags: 0, seq: 0, body: new Uint8Array(64) }), // XFRM_MSG_MAPPING (multicast, seq 0)
    errMsg(seq, 0),
  ]);
  nl.request(req(nl), 'NEWSA SA1');
  assert.deepEqual([...sent[0]!], new Array(sent[0]!.length).fill(0), 'the request buffer (keys!) is zeroed after sending');
  assert.deepEqual(
    nl.poll().map((m) => m.type),
    [0x26],
  );
});

test('a kernel error becomes XfrmError XFRM_KERNEL with the step, errno name and extended-ack text', () => {
  const { nl } = fake(({ seq }) => [errMsg(seq, 93, 'Requested type not found')]);
  assert.throws(
    () => nl.request(req(nl), 'NEWSA SA3 spi 0x1003'),
    (e: unknown) => {
      assert.ok(e instanceof XfrmError);
      assert.equal(e.code, 'XFRM_KERNEL');
      assert.equal(e.errno, 93);
      assert.equal(e.message, 'NEWSA SA3 spi 0x1003: EPROTONOSUPPORT: Requested type not found');
      return true;
    },
  );
});

test('no answer in time is XFRM_TIMEOUT; a garbled datagram is XFRM_BAD_REPLY', () => {
  assert.throws(
    () => fake(() => []).nl.request(new Uint8Array(encodeMessage({ type: 0x10, flags: 5, seq: 1, body: new Uint8Array(0) })), 'NEWSA'),
    { code: 'XFRM_TIMEOUT' },
  );
  const { nl } = fake(() => [new Uint8Array([0xff, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])]);
  assert.throws(() => nl.request(req(nl), 'NEWSA'), { code: 'XFRM_BAD_REPLY' });
});

test('get parses the one answer and zeroes it; ESRCH means absent', () => {
  let seen: Uint8Array | undefined;
  const { nl } = fake(({ seq }) => [encodeMessage({ type: 0x10, flags: 0, seq, body: new Uint8Array([9, 9, 9, 9]) })]);
  const r = nl.get(req(nl, 0x12), 'GETSA', (p) => {
    seen = p;
    return p[0];
  });
  assert.equal(r, 9);
  assert.deepEqual([...seen!], [0, 0, 0, 0], 'the answer (which may hold keys) is zeroed after parsing');
  const absent = fake(({ seq }) => [errMsg(seq, 3)]);
  assert.equal(
    absent.nl.get(req(absent.nl, 0x12), 'GETSA', () => 1),
    undefined,
  );
  const other = fake(({ seq }) => [errMsg(seq, 1)]);
  assert.throws(() => other.nl.get(req(other.nl, 0x12), 'GETSA', () => 1), { code: 'XFRM_KERNEL', errno: 1 });
});

test('dump collects records over several datagrams up to NLMSG_DONE, and redoes an interrupted dump', () => {
  let calls = 0;
  const { nl } = fake(({ seq }) => {
    calls++;
    const rec = (n: number, flags = NLM_F_MULTI) => encodeMessage({ type: 0x10, flags, seq, body: new Uint8Array([n, 0, 0, 0]) });
    const done = encodeMessage({
      type: NLMSG_DONE,
      flags: NLM_F_MULTI | (calls === 1 ? NLM_F_DUMP_INTR : 0),
      seq,
      body: new Uint8Array(4),
    });
    return [new Uint8Array([...rec(1), ...rec(2)]), new Uint8Array([...rec(3), ...done])];
  });
  const out = nl.dump(encodeMessage({ type: 0x12, flags: 0x301, seq: nl.nextSeq(), body: new Uint8Array(0) }), 'dump SAs', (p) => p[0]);
  assert.deepEqual(out, [1, 2, 3]);
  assert.equal(calls, 2, 'NLM_F_DUMP_INTR: dumped again');
});

test('poll() returns copies that survive the zeroing of the datagram (a Buffer slice would not)', () => {
  const mapping = encodeMessage({ type: 0x26, flags: 0, seq: 0, body: new Uint8Array(64).fill(7) });
  let given: Buffer | undefined;
  const native: ImsecNative = {
    netlinkOpen: () => 1,
    netlinkSend: (_fd, b) => b.length,
    netlinkRecv: () => {
      if (given) return null;
      given = Buffer.from(mapping);
      return given;
    },
    close: () => {},
    espInUdpSocket: () => ({ fd: 1, port: 1 }),
    udpSend: () => 0,
  };
  const msgs = new XfrmNetlink({ native }).poll();
  assert.equal(msgs.length, 1);
  assert.ok(
    given!.every((b) => b === 0),
    'the received datagram was zeroed',
  );
  assert.ok(
    msgs[0]!.payload.every((b) => b === 7),
    'the returned payload is intact',
  );
});
