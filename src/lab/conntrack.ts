// The NAT's connection-tracking table as data: parsing `conntrack -L -o extended` lines into the
// original and reply tuples, so a test can read a UE's public port (reply.dport) without regexes.

export interface ConntrackTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
}

export interface ConntrackEntry {
  family: 'ipv4' | 'ipv6';
  /** 'udp', 'tcp', 'icmp', … */
  proto: string;
  /** Seconds until the entry expires. */
  timeoutS: number;
  /** TCP state (ESTABLISHED…); absent for UDP. */
  state?: string;
  /** The packet that created the entry, as it arrived (private addresses for an outbound UE flow). */
  orig: ConntrackTuple;
  /** What a reply must look like: for a NATed flow `dst`/`dport` are the public address and port. */
  reply: ConntrackTuple;
  /** [UNREPLIED], [ASSURED], … without the brackets. */
  flags: string[];
  raw: string;
}

/** Parses the output of `conntrack -L -o extended`; lines that do not parse are skipped. */
export function parseConntrack(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const raw of text.split('\n')) {
    const tok = raw.trim().split(/\s+/);
    // ipv4 2 udp 17 29 [STATE] k=v… — the first five fields are positional.
    if (tok.length < 6 || (tok[0] !== 'ipv4' && tok[0] !== 'ipv6')) continue;
    const entry: ConntrackEntry = {
      family: tok[0],
      proto: tok[2]!,
      timeoutS: Number(tok[4]),
      orig: { src: '', dst: '' },
      reply: { src: '', dst: '' },
      flags: [],
      raw,
    };
    let tuple: ConntrackTuple | undefined;
    let seen = 0; // src= starts a tuple: the first is the original direction, the second the reply
    for (const t of tok.slice(5)) {
      const flag = /^\[(.+)\]$/.exec(t);
      if (flag) {
        entry.flags.push(flag[1]!);
        continue;
      }
      const eq = t.indexOf('=');
      if (eq < 0) {
        if (seen === 0) entry.state = t;
        continue;
      }
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === 'src') {
        seen++;
        tuple = seen === 1 ? entry.orig : seen === 2 ? entry.reply : undefined;
      }
      if (!tuple) continue;
      if (k === 'src' || k === 'dst') tuple[k] = v;
      else if (k === 'sport' || k === 'dport') tuple[k] = Number(v);
    }
    if (entry.orig.src && entry.reply.src) out.push(entry);
  }
  return out;
}
