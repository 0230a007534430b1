// SaStats of a set whose ESP runs in this process (userspace and memory backends): the engine's
// own per-SA counters, in the shape the xfrm backend reads from the kernel.
import type { SaSet } from '../sa-set.ts';
import type { SaStats } from './backend.ts';

export function engineSaStats(set: SaSet): SaStats[] {
  return set.all.map((sa) => ({
    name: sa.name,
    spi: sa.spi,
    packets: sa.counters.packets,
    bytes: sa.counters.bytes,
    // The kernel's `replay` counts both a replayed and a too-old sequence number.
    replayDrops: sa.counters.drops.replay + sa.counters.drops['outside-window'],
    integrityFailures: sa.counters.drops.icv,
    seq: sa.seq,
  }));
}
