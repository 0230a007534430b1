// Long-lived byte strings of one lifetime, packed into shared slabs. A server transaction keeps its
// final response's bytes for Timer J (32 s); as a slice of node's Buffer pool those bytes pin 8 KiB
// slabs that are mostly short-lived garbage (every message serialized, every Buffer.from), which made
// a retained 500-octet response cost ~1.7 KB. Copied here, they share slabs only with bytes that die
// in the same order (Timer J is one delay: first in, first out), so a slab is freed once its last
// tenant's transaction ends, and the packing stays dense.

const SLAB = 64 * 1024;

/** Copies byte strings into shared slabs; a copy lives as long as any view of its slab. */
export class ByteArena {
  #slab = new Uint8Array(0);
  #used = 0;

  /** A copy of `bytes` in the current slab (its own buffer when larger than a quarter slab). */
  keep(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    if (n > SLAB / 4) return bytes.slice();
    if (this.#used + n > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB);
      this.#used = 0;
    }
    const at = this.#used;
    this.#slab.set(bytes, at);
    // Keep the next copy 8-aligned (cheap to copy, and no view straddles a word it does not own).
    this.#used = (at + n + 7) & ~7;
    return this.#slab.subarray(at, at + n);
  }
}
