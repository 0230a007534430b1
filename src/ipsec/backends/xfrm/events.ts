// Kernel notifications the backend listens to (XFRMNLGRP_MAPPING, XFRMNLGRP_EXPIRE): an ESP-in-UDP
// SA saw its peer at a new address or port (after the ICV check; spec digest §15A points 2 and 6),
// or the kernel expired an SA. Polled without blocking: on every inbound lookup and once a second.
import { XFRM_MSG, XFRMNLGRP_EXPIRE_BIT, XFRMNLGRP_MAPPING_BIT, parseExpire, parseMapping, type MappingEvent } from './messages.ts';
import { XfrmNetlink } from './socket.ts';
import { guard } from '../../../util/guard.ts';

export type KernelEvent =
  | {
      readonly kind: 'mapping';
      readonly dst: string;
      readonly spi: number;
      readonly oldSrc: string;
      readonly newSrc: string;
      readonly oldSport: number;
      readonly newSport: number;
    }
  | { readonly kind: 'expire'; readonly dst: string; readonly spi: number; readonly hard: boolean };

export class XfrmEvents {
  #nl: XfrmNetlink | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #mappings = new Map<string, MappingEvent>();

  constructor(
    enabled: boolean,
    private readonly emit: (e: KernelEvent) => void,
  ) {
    if (!enabled) return;
    try {
      this.#nl = new XfrmNetlink({ groups: XFRMNLGRP_MAPPING_BIT | XFRMNLGRP_EXPIRE_BIT });
    } catch {
      return; // no CAP_NET_ADMIN for multicast: the backend works without events
    }
    this.#timer = setInterval(
      guard('xfrm.events', () => this.drain()),
      1000,
    );
    this.#timer.unref();
  }

  /** Reads what the kernel announced since the last call. */
  drain(): void {
    if (!this.#nl) return;
    let msgs;
    try {
      msgs = this.#nl.poll();
    } catch {
      return;
    }
    for (const m of msgs) {
      if (m.type === XFRM_MSG.MAPPING) {
        const ev = parseMapping(m.payload);
        if (!ev) continue;
        this.#mappings.set(`${ev.dst}|${ev.spi}`, ev);
        this.emit({
          kind: 'mapping',
          dst: ev.dst,
          spi: ev.spi,
          oldSrc: ev.oldSrc,
          newSrc: ev.newSrc,
          oldSport: ev.oldSport,
          newSport: ev.newSport,
        });
      } else if (m.type === XFRM_MSG.EXPIRE) {
        const ev = parseExpire(m.payload);
        if (ev) this.emit({ kind: 'expire', dst: ev.sa.dst, spi: ev.sa.spi, hard: ev.hard });
      }
    }
  }

  /** The latest mapping the kernel reported for the inbound SA (dst, spi), if any. */
  mappingOf(dst: string, spi: number): MappingEvent | undefined {
    return this.#mappings.get(`${dst}|${spi}`);
  }

  /** Drops what was learnt about an SA that is gone. */
  forget(dst: string, spi: number): void {
    this.#mappings.delete(`${dst}|${spi}`);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#nl?.close();
    this.#nl = undefined;
  }
}
