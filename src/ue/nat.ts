// The UE's side of Annex M (24.229 F.2; spec digest §15A points 2 and 4): the public address learnt
// from Via received/rport, whether a NAT sits in between, and which address goes where — Contact
// (public over UDP-enc-tun SAs), Via and the tunnel's inner address (local, or public for peers
// that want 'public inside').
import { isIP } from 'node:net';
import { sameAddress } from '../ipsec/sa.ts';
import type { SaSet } from '../ipsec/sa-set.ts';

export type PublicAddress = { readonly address: string; readonly port?: number };

export class UeNat {
  #public: PublicAddress | undefined;

  constructor(
    private readonly localIp: string,
    private readonly inner: 'private' | 'public' = 'private',
  ) {}

  get publicAddress(): PublicAddress | undefined {
    return this.#public;
  }

  /** Whether the last Via received named another address of our family than ours (24.229 F.1). */
  get behindNat(): boolean {
    const pub = this.#public?.address;
    return pub !== undefined && isIP(pub) === isIP(this.localIp) && !sameIp(pub, this.localIp);
  }

  /**
   * Records `pub` (from the 401 to an unprotected REGISTER). Returns the previous value and a
   * line for the log when something changed, else undefined.
   */
  note(pub: PublicAddress, plainPort: number): { previous: PublicAddress | undefined; text: string } | undefined {
    const prev = this.#public;
    if (sameIp(pub.address, prev?.address) && pub.port === prev?.port) return undefined;
    this.#public = pub;
    const where = `${pub.address}${pub.port ? `:${pub.port}` : ''}`;
    if (prev && !sameIp(prev.address, pub.address)) {
      return {
        previous: prev,
        text: `public address changed from ${prev.address} to ${where} (Via received/rport): the new one goes into the Contact`,
      };
    }
    const nat = !sameIp(pub.address, this.localIp) || (pub.port !== undefined && pub.port !== plainPort);
    return { previous: prev, text: `public address ${where} (Via received/rport)${nat ? ': behind a NAT' : ''}` };
  }

  /**
   * Via and Contact hosts of a request over `set` (or unprotected without one). 24.229 F.2.1.2.2:
   * behind a NAT a protected REGISTER (and what follows over the SAs) names the public address in
   * the Contact; unprotected ones the private address.
   */
  addressing(set: SaSet | undefined): { via: string; contact: string } {
    const pub = set?.config.mode === 'udp-enc-tunnel' && this.behindNat ? this.#public!.address : undefined;
    if (!pub) return { via: this.localIp, contact: this.localIp };
    // 'public inside' (OpenSIPS-style peers, §15A point 4): the whole SIP layer uses the public address.
    return { via: this.inner === 'public' ? pub : this.localIp, contact: pub };
  }

  /** The inner address of a new UDP-enc-tun set when it is not the local one ('public inside' peers). */
  tunnelInnerIp(): string | undefined {
    return this.inner === 'public' && this.behindNat ? this.#public!.address : undefined;
  }
}

function sameIp(a: string, b: string | undefined): boolean {
  return b !== undefined && isIP(a) !== 0 && isIP(a) === isIP(b) && sameAddress(a, b);
}
