// Parsers for what the Linux kernel tells about its ESP SAs: `ip -s xfrm state` (per-SA packet
// counts, replay/integrity failures, sequence numbers) and /proc/net/xfrm_stat (per-netns errors).
// Pure, so the host tests them on recorded output (iproute2 6.1 format, legacy and ESN replay).

export interface XfrmStateStats {
  src: string;
  dst: string;
  spi: number;
  mode: string;
  /** "lifetime current": packets and bytes processed by this SA. */
  packets: number;
  bytes: number;
  /** "stats:" line: packets outside the window, replayed packets, integrity (and other) failures. */
  replayWindowDrops: number;
  replay: number;
  failed: number;
  /** Anti-replay context: highest sequence number received (`seq`) and last one sent (`oseq`). */
  seq: number;
  oseq: number;
  /** `encap type espinudp sport S dport D`, when present. */
  encap?: { sport: number; dport: number };
}

const hexNum = (re: RegExp, s: string): number | undefined => {
  const m = re.exec(s);
  return m ? parseInt(m[1]!, 16) : undefined;
};

/** One record per SA in `ip -s xfrm state` output; blocks that do not parse are skipped. */
export function parseXfrmStates(text: string): XfrmStateStats[] {
  const out: XfrmStateStats[] = [];
  // Each SA starts with an unindented "src A dst B" line.
  const blocks = text.split(/^(?=src )/m).filter((b) => b.startsWith('src '));
  for (const b of blocks) {
    const head = /^src (\S+) dst (\S+)/.exec(b);
    const spi = hexNum(/proto esp spi 0x([0-9a-f]+)/, b);
    if (!head || spi === undefined) continue;
    const life = /lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(b);
    const stats = /replay-window (\d+) replay (\d+) failed (\d+)/.exec(b);
    // The anti-replay context, legacy ("seq 0x3, oseq 0x0, bitmap …") or ESN ("seq-hi 0x0, seq 0x3,
    // oseq-hi 0x0, oseq 0x0"); searched after its heading, since the header line has "seq 0x…" too.
    const ar = b.slice(Math.max(0, b.indexOf('anti-replay')));
    const encap = /encap type espinudp sport (\d+) dport (\d+)/.exec(b);
    out.push({
      src: head[1]!,
      dst: head[2]!,
      spi,
      mode: /\bmode (\S+)/.exec(b)?.[1] ?? '?',
      bytes: life ? Number(life[1]) : NaN,
      packets: life ? Number(life[2]) : NaN,
      replayWindowDrops: stats ? Number(stats[1]) : NaN,
      replay: stats ? Number(stats[2]) : NaN,
      failed: stats ? Number(stats[3]) : NaN,
      seq: hexNum(/[\s,]seq 0x([0-9a-f]+)/, ar) ?? NaN,
      oseq: hexNum(/[\s,]oseq 0x([0-9a-f]+)/, ar) ?? NaN,
      ...(encap ? { encap: { sport: Number(encap[1]), dport: Number(encap[2]) } } : {}),
    });
  }
  return out;
}

/** /proc/net/xfrm_stat: "XfrmInNoStates   0" lines → { XfrmInNoStates: 0, … }. */
export function parseXfrmStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(Xfrm\w+)\s+(\d+)/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** after − before for every counter (missing = 0). */
export function statDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) out[k] = (after[k] ?? 0) - (before[k] ?? 0);
  return out;
}
