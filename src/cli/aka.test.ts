// `imsec aka …` end to end: spawns bin/imsec.mjs and checks JSON output against test-vectors
// §1/§2/§6 and the exit codes (0 ok, 1 failed check, 2 bad input). Spawns are kept few.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { verifyAuts } from '../aka/index.ts';
import { fromBase64, fromHex, toHex } from '../util/bytes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function imsec(...args: string[]): { code: number | null; out: string; err: string; json: () => Record<string, unknown> } {
  const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'aka', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) as Record<string, unknown> };
}

// TS 35.208 Test Set 1 and the §6 Digest parameters.
const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OP = 'cdc202d5123e20f62b6d676ac72cb318';
const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';
const NONCE = 'I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=';
const REALM = 'ims.mnc001.mcc001.3gppnetwork.org';
const DIGEST = ['--username', `001010123456789@${REALM}`, '--realm', REALM, '--uri', `sip:${REALM}`, '--nonce', NONCE];

test('vector: Test Set 1 with a fixed RAND and --op prints the §6 AV, OPc and nonce', () => {
  const r = imsec(
    'vector',
    '--k',
    K,
    '--op',
    OP,
    '--sqn',
    'ff9bb4d0b607',
    '--amf',
    'b9b9',
    '--rand',
    '23553cbe9637a89d218ae64dae47bf35',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json(), {
    rand: '23553cbe9637a89d218ae64dae47bf35',
    autn: '55f328b43577b9b94a9ffac354dfafb3',
    xres: 'a54211d5e3ba50bf',
    ck: 'b40ba9a3c58b2a05bbf0d987b21bf8cb',
    ik: 'f769bcd751044604127672711c6d3441',
    ak: 'aa689c648370',
    mac_a: '4a9ffac354dfafb3',
    opc: OPC,
    nonce: NONCE,
  });
});

test('vector: both --op and --opc is bad input (exit 2) naming both', () => {
  const r = imsec('vector', '--k', K, '--op', OP, '--opc', OPC, '--sqn', 'ff9bb4d0b607', '--amf', 'b9b9');
  assert.equal(r.code, 2);
  assert.match(r.err, /--op and --opc/);
  assert.equal(r.out, '');
});

test('respond: the §6 nonce is accepted with RES, CK, IK (exit 0; human table output)', () => {
  const r = imsec('respond', '--k', K, '--opc', OPC, '--nonce', NONCE);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^result\s+ok$/m);
  assert.match(r.out, /^res\s+a54211d5e3ba50bf$/m);
  assert.match(r.out, /^ck\s+b40ba9a3c58b2a05bbf0d987b21bf8cb$/m);
  assert.match(r.out, /^ik\s+f769bcd751044604127672711c6d3441$/m);
});

test('respond: a wrong K is a MAC failure (exit 1)', () => {
  const r = imsec(
    'respond',
    '--k',
    '00'.repeat(16),
    '--opc',
    OPC,
    '--rand',
    '23553cbe9637a89d218ae64dae47bf35',
    '--autn',
    '55f328b43577b9b94a9ffac354dfafb3',
    '--json',
  );
  assert.equal(r.code, 1, r.err);
  const j = r.json();
  assert.equal(j.result, 'mac_failure');
  assert.equal(j.res, undefined);
});

test('respond: an SQN not above --sqn-ms is a sync failure whose AUTS verifies at the HSS (exit 1)', () => {
  const r = imsec('respond', '--k', K, '--opc', OPC, '--nonce', NONCE, '--sqn-ms', 'ff9bb4d0b607', '--json');
  assert.equal(r.code, 1, r.err);
  const j = r.json();
  assert.equal(j.result, 'sync_failure');
  assert.equal(j.sqn, 'ff9bb4d0b607');
  assert.equal(j.amf, 'b9b9');
  const auts = fromBase64(j.auts as string);
  assert.equal(auts.length, 14);
  const hss = verifyAuts({ k: fromHex(K), opc: fromHex(OPC), rand: fromHex('23553cbe9637a89d218ae64dae47bf35'), auts });
  assert.equal(hss.ok, true);
  assert.equal(toHex(hss.sqnMs), 'ff9bb4d0b607');
});

test('resync: §2 A1 recovers SQN_MS 000000000001 with MAC-S ok (exit 0)', () => {
  const r = imsec(
    'resync',
    '--k',
    '90dca4eda45b53cf0f12d7c9c3bc6a89',
    '--opc',
    'cb9cccc4b9258e6dca4760379fb82581',
    '--rand',
    '9fddc72092c6ad036b6e464789315b78',
    '--auts',
    'TyA5OS3dS7QxbtShRog=',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json(), { sqn_ms: '000000000001', mac_s_ok: true });
});

test('resync: an AUTS checked with the wrong keys reports mac_s_ok false (exit 1)', () => {
  const r = imsec(
    'resync',
    '--k',
    K,
    '--opc',
    OPC,
    '--rand',
    '9fddc72092c6ad036b6e464789315b78',
    '--auts',
    'TyA5OS3dS7QxbtShRog=',
    '--json',
  );
  assert.equal(r.code, 1, r.err);
  assert.equal(r.json().mac_s_ok, false);
});

test('digest: §6 AKAv1-MD5 with qop=auth', () => {
  const r = imsec('digest', ...DIGEST, '--res', 'a54211d5e3ba50bf', '--qop', 'auth', '--nc', '00000001', '--cnonce', '0a4f113b', '--json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json(), { response: 'cbefdcc54c81aa658d67da2fba29638c' });
});

test('digest: §6 AKAv2-MD5 without qop', () => {
  const r = imsec(
    'digest',
    ...DIGEST,
    '--res',
    'a54211d5e3ba50bf',
    '--algorithm',
    'AKAv2-MD5',
    '--ik',
    'f769bcd751044604127672711c6d3441',
    '--ck',
    'b40ba9a3c58b2a05bbf0d987b21bf8cb',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json(), { response: '8975deb6a8bfc100292443870426e9f8' });
});

test('digest: --res "" is the empty password of a sync failure (§6)', () => {
  const r = imsec('digest', ...DIGEST, '--res', '', '--json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json(), { response: '180933893eb8c4519e87ae2c9d5a1955' });
});

test('digest: AKAv2-MD5 without --ik/--ck is bad input (exit 2)', () => {
  const r = imsec('digest', ...DIGEST, '--res', 'a54211d5e3ba50bf', '--algorithm', 'AKAv2-MD5');
  assert.equal(r.code, 2);
  assert.match(r.err, /AKAv2-MD5 needs IK and CK/);
});
