// The IV pool's randomness is injectable (tests, fuzzers): CBC IVs come from it, and restoring
// node:crypto makes them unpredictable again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandKeys } from '../../keys.ts';
import { createTransform } from '../transform.ts';
import { ESP_HEADER_LEN } from '../wire.ts';
import { setIvRandomness } from './iv.ts';

const keys = expandKeys(new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), 'hmac-sha-1-96', 'aes-cbc');

function ivOfSealed(): Uint8Array {
  const t = createTransform('hmac-sha-1-96', 'aes-cbc', keys);
  const pkt = new Uint8Array(ESP_HEADER_LEN + t.ivLen + 16 + t.icvLen);
  t.seal(pkt, 1);
  return pkt.slice(ESP_HEADER_LEN, ESP_HEADER_LEN + t.ivLen);
}

test('setIvRandomness: CBC IVs come from the injected source; undefined restores node:crypto', () => {
  try {
    setIvRandomness((out) => out.fill(0xab));
    assert.deepEqual(ivOfSealed(), new Uint8Array(16).fill(0xab));
    setIvRandomness((out) => out.forEach((_, i) => (out[i] = i & 0xff)));
    assert.deepEqual(
      ivOfSealed(),
      Uint8Array.from({ length: 16 }, (_, i) => i),
    );
    assert.deepEqual(
      ivOfSealed(),
      Uint8Array.from({ length: 16 }, (_, i) => 16 + i),
      'the pool moves on',
    );
  } finally {
    setIvRandomness(undefined);
  }
  assert.notDeepEqual(ivOfSealed(), ivOfSealed());
});
