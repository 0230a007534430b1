// A whole IMS registration on loopback from a script: an S-CSCF with its HSS (SQLite in memory), a
// P-CSCF, and a UE that registers with IMS AKA and sets up the four ESP SAs (33.203 §7), sends one
// protected MESSAGE, then de-registers. Userspace ESP in UDP (RFC 3948): no root needed.
// Exits 1 if a step fails. Run: node examples/register-ue.mjs
import { HssStore, Hss, Scscf } from 'imsec/core';
import { Pcscf } from 'imsec/pcscf';
import { Ue } from 'imsec/ue';
import { UserspaceBackend, systemClock } from 'imsec/backends';

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const ip = '127.0.0.1';
const domain = 'ims.mnc001.mcc001.3gppnetwork.org';
const impi = `001010000000001@${domain}`;
const impu = `sip:001010000000001@${domain}`;
const k = hex('465b5ce8b199b49faa5f0a2ee238a6bc'); // TS 35.208 Test Set 1
const opc = hex('cd63cb71954a9f4e48a5994e37a02baf');

const clock = systemClock; // one time scale for the SIP timers and the SA lifetimes
const cleanup = [];
try {
  // The core: the subscriber in the HSS, the S-CSCF on an ephemeral port.
  const store = new HssStore(':memory:');
  cleanup.push(() => store.close());
  store.add({ impi, impus: [impu], k, opc, amf: hex('8000') });
  const scscf = await Scscf.start({ address: ip, port: 0, domain, hss: new Hss(store), clock });
  cleanup.push(() => scscf.stop());

  // The P-CSCF with its SAs in imsec's userspace ESP engine (ESP in UDP on an ephemeral port).
  const pcscfSas = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock });
  cleanup.push(() => pcscfSas.close());
  const pcscf = await Pcscf.start({
    address: ip,
    port: 0,
    portC: 0,
    portS: 0,
    scscf: scscf.local,
    backend: pcscfSas,
    mode: 'udp-enc-tun',
    clock,
  });
  cleanup.push(() => pcscf.stop());
  console.log(
    `P-CSCF on ${ip}:${pcscf.port} (protected ports ${pcscf.portC}/${pcscf.portS}), S-CSCF on ${scscf.local.address}:${scscf.local.port}`,
  );

  // The UE: offers ESP in UDP-encapsulated tunnel mode, HMAC-SHA-1-96 with AES-CBC.
  const ueSas = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock });
  cleanup.push(() => ueSas.close());
  const ue = await Ue.create({
    impi,
    impu,
    k,
    opc,
    localIp: ip,
    backend: ueSas,
    pcscf: { address: ip, port: pcscf.port },
    pcscfEncapPort: pcscfSas.encapPort,
    modes: ['UDP-enc-tun'],
    offers: [{ alg: 'hmac-sha-1-96', ealg: 'aes-cbc' }],
    reRegister: 'off',
    clock,
  });
  cleanup.push(() => ue.close());

  const reg = await ue.register();
  if (!reg.ok) throw new Error(`registration failed: ${reg.reason}`);
  console.log(`registered: expires ${reg.expires} s, IMPUs ${reg.impus.join(', ')}, SA set ${reg.set}`);
  for (const r of pcscf.registrations()) {
    for (const s of r.sets)
      console.log(`  P-CSCF SA set ${s.id} (${s.role}): ${s.sas.map((sa) => `${sa.name ?? ''} spi=${sa.spi ?? ''}`).join(', ')}`);
  }

  const answer = await ue.sendMessage(impu, 'hello over ESP');
  console.log(`MESSAGE to self over the SAs: ${answer.status} ${answer.reason}`);
  if (answer.status >= 300) throw new Error('MESSAGE failed');

  const dereg = await ue.deregister();
  if (!dereg.ok) throw new Error(`de-registration failed: ${dereg.reason}`);
  console.log('de-registered');
} catch (e) {
  console.error(`register-ue: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
} finally {
  for (const f of cleanup.reverse()) await f();
}
