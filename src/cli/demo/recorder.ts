// What the demo remembers while it runs: every SIP message (from the transport traces), every SA
// set either side installed (so deleted ones still show their counters), and the pcap of the
// access side. Only UE ⇄ P-CSCF traffic goes into the pcap: the S-CSCF → P-CSCF 401 carries CK/IK
// in clear, and keys leave only through the explicit --keylog.
import { isIP } from 'node:net';
import { buildIpPacket, buildUdp } from '../../ipsec/esp/index.ts';
import type { IpsecBackend } from '../../ipsec/backends/backend.ts';
import type { SaSet } from '../../ipsec/sa-set.ts';
import type { PcapFileWriter } from '../../ipsec/pcap.ts';
import type { SipTraceEvent } from '../../util/trace.ts';

export type Node = 'ue' | 'pcscf' | 'scscf';

export interface Installed {
  readonly side: 'ue' | 'pcscf';
  readonly set: SaSet;
}

export class DemoRecorder {
  readonly messages: SipTraceEvent[] = [];
  readonly installed: Installed[] = [];
  readonly #t0 = Date.now();
  #pcap: PcapFileWriter | undefined;
  #accessPorts = new Set<string>();

  constructor(pcap?: PcapFileWriter) {
    this.#pcap = pcap;
  }

  get t0(): number {
    return this.#t0;
  }

  /** Endpoints on the access side (UE ⇄ P-CSCF), for pcap filtering of unprotected SIP. */
  markAccess(address: string, port: number): void {
    this.#accessPorts.add(`${address}|${port}`);
  }

  trace = (e: SipTraceEvent): void => {
    this.messages.push(e);
    // Unprotected access-side SIP goes into the pcap once, from the sender's side; ESP comes from the backends.
    if (this.#pcap && e.dir === 'send' && !e.sa && this.#isAccess(e)) {
      const udp = buildUdp(e.local.address, e.remote.address, e.local.port, e.remote.port, e.bytes);
      this.#pcap.write(buildIpPacket({ src: e.local.address, dst: e.remote.address, protocol: 17, payload: udp }));
    }
  };

  /** The outer packets a backend sends (each ESP packet once: only the sender logs it). */
  wireLog = (ip: Uint8Array, dir: 'in' | 'out'): void => {
    if (dir === 'out') this.#pcap?.write(ip);
  };

  /** Wraps a backend so every installed set is remembered with its side (plain delegation: backends keep private state). */
  recordInstalls(side: 'ue' | 'pcscf', b: IpsecBackend): IpsecBackend {
    const installed = this.installed;
    return {
      name: b.name,
      features: b.features,
      saStats: (set) => b.saStats(set),
      get encapPort() {
        return b.encapPort;
      },
      get sets() {
        return b.sets;
      },
      get counters() {
        return b.counters;
      },
      allocateSpis: (ip, n) => b.allocateSpis(ip, n),
      install: async (set) => {
        await b.install(set);
        installed.push({ side, set });
      },
      remove: (set) => b.remove(set),
      openEndpoint: (local) => b.openEndpoint(local),
      setPeerEncap: (set, peer) => b.setPeerEncap(set, peer),
      close: () => b.close(),
    };
  }

  close(): void {
    this.#pcap?.close();
    this.#pcap = undefined;
  }

  #isAccess(e: SipTraceEvent): boolean {
    return this.#accessPorts.has(`${e.remote.address}|${e.remote.port}`) || this.#accessPorts.has(`${e.local.address}|${e.local.port}`)
      ? !(isIP(e.remote.address) === 0)
      : false;
  }
}
