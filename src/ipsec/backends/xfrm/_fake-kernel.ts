// Test helper: an in-memory SAD/SPD that speaks the XfrmTransport interface with the kernel's rules
// that matter here (SA identity dst+SPI, EEXIST/ESRCH/ENOENT, policy identity dir+selector incl.
// the user field, kernel-assigned policy indexes), plus injected failures. Not the real kernel:
// the VM test (test/kernel/xfrm-backend.test.ts) is the oracle for that.
import { kernelError, EEXIST, ENOENT, ESRCH, type XfrmTransport } from './socket.ts';
import { XFRM_MSG, parsePolicy, parseSa, type PolicyRecord, type SaRecord } from './messages.ts';
import { decodeMessages, type NlMessage } from './netlink.ts';
import { policyKey } from './plan.ts';
import { getAddr, getSelector, familyOfAf } from './structs.ts';

export interface FakeOp {
  readonly type: keyof typeof XFRM_MSG;
  readonly step: string;
}

export class FakeKernel implements XfrmTransport {
  /** `dst|spi` → the stored NEWSA payload (keys included: it is a test). */
  readonly sas = new Map<string, Uint8Array>();
  readonly policies = new Map<string, { index: number; payload: Uint8Array }>();
  readonly ops: FakeOp[] = [];
  /** Return an errno to make this request fail. */
  failOn: ((op: FakeOp, count: number) => number | undefined) | undefined;
  #seq = 0;
  #index = 0;

  nextSeq(): number {
    return ++this.#seq;
  }

  sa(dst: string, spi: number): SaRecord | undefined {
    const p = this.sas.get(`${dst}|${spi}`);
    return p && parseSa(p);
  }

  /** Adds to an SA's lifetime-current packet counter (as traffic through the kernel would). */
  count(dst: string, spi: number, packets: number): void {
    const p = this.sas.get(`${dst}|${spi}`)!;
    const dv = new DataView(p.buffer, p.byteOffset);
    dv.setBigUint64(168, dv.getBigUint64(168, true) + BigInt(packets), true);
  }

  allSas(): SaRecord[] {
    return [...this.sas.values()].map((p) => parseSa(p)!);
  }

  allPolicies(): (PolicyRecord & { index: number })[] {
    return [...this.policies.values()].map((p) => ({ ...parsePolicy(p.payload)!, index: p.index }));
  }

  request(msg: Uint8Array, step: string): void {
    const m = decodeMessages(msg)![0]!;
    const name = (Object.keys(XFRM_MSG) as (keyof typeof XFRM_MSG)[]).find((k) => XFRM_MSG[k] === m.type)!;
    const op = { type: name, step };
    this.ops.push(op);
    const count = this.ops.filter((o) => o.type === name).length;
    const fail = this.failOn?.(op, count);
    const payload = new Uint8Array(m.payload);
    msg.fill(0);
    if (fail) throw kernelError(step, { errno: fail, requestType: m.type, requestSeq: m.seq });
    const err = this.#apply(m, payload);
    if (err) throw kernelError(step, { errno: err, requestType: m.type, requestSeq: m.seq });
  }

  #apply(m: NlMessage, payload: Uint8Array): number | undefined {
    switch (m.type) {
      case XFRM_MSG.NEWSA:
      case XFRM_MSG.UPDSA: {
        const r = parseSa(payload)!;
        const key = `${r.dst}|${r.spi}`;
        if (m.type === XFRM_MSG.NEWSA && this.sas.has(key)) return EEXIST;
        if (m.type === XFRM_MSG.UPDSA && !this.sas.has(key)) return ESRCH;
        this.sas.set(key, payload);
        return undefined;
      }
      case XFRM_MSG.DELSA: {
        const family = familyOfAf(new DataView(payload.buffer).getUint16(20, true))!;
        const key = `${getAddr(payload, 0, family)}|${new DataView(payload.buffer).getUint32(16, false)}`;
        return this.sas.delete(key) ? undefined : ESRCH;
      }
      case XFRM_MSG.NEWPOLICY:
      case XFRM_MSG.UPDPOLICY: {
        const r = parsePolicy(payload)!;
        const key = policyKey(r.dir!, r.sel!);
        if (m.type === XFRM_MSG.NEWPOLICY && this.policies.has(key)) return EEXIST;
        this.policies.set(key, { index: this.policies.get(key)?.index ?? ++this.#index * 8 + (r.dir === 'out' ? 1 : 0), payload });
        return undefined;
      }
      case XFRM_MSG.DELPOLICY: {
        const dv = new DataView(payload.buffer);
        const index = dv.getUint32(56, true);
        const dir = payload[60] === 0 ? 'in' : 'out';
        const key = index ? [...this.policies.entries()].find(([, v]) => v.index === index)?.[0] : policyKey(dir, getSelector(payload, 0)!);
        return key !== undefined && this.policies.delete(key) ? undefined : ENOENT;
      }
      default:
        return 22;
    }
  }

  get<T>(
    msg: Uint8Array,
    step: string,
    parse: (p: Uint8Array) => T | undefined,
    absent: readonly number[] = [ESRCH, ENOENT],
  ): T | undefined {
    const m = decodeMessages(msg)![0]!;
    this.ops.push({ type: 'GETSA', step });
    const family = familyOfAf(new DataView(m.payload.buffer, m.payload.byteOffset).getUint16(20, true))!;
    const key = `${getAddr(m.payload, 0, family)}|${new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(16, false)}`;
    const p = this.sas.get(key);
    if (!p) {
      if (absent.includes(ESRCH)) return undefined;
      throw kernelError(step, { errno: ESRCH, requestType: m.type, requestSeq: m.seq });
    }
    return parse(new Uint8Array(p));
  }

  dump<T>(msg: Uint8Array, step: string, parse: (p: Uint8Array) => T | undefined): T[] {
    const m = decodeMessages(msg)![0]!;
    this.ops.push({ type: m.type === XFRM_MSG.GETSA ? 'GETSA' : 'GETPOLICY', step });
    if (m.type === XFRM_MSG.GETSA) return [...this.sas.values()].map((p) => parse(new Uint8Array(p))).filter((x) => x !== undefined);
    return [...this.policies.values()]
      .map(({ index, payload }) => {
        const p = new Uint8Array(payload);
        new DataView(p.buffer).setUint32(156, index, true);
        return parse(p);
      })
      .filter((x) => x !== undefined);
  }

  poll(): NlMessage[] {
    return [];
  }

  close(): void {}
}
