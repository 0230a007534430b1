// One-off: heap snapshot of the load side with N registered UEs (in-process world).
import { writeHeapSnapshot } from 'node:v8';
import { startWorld, DOMAIN, K, OPC } from './test/support/ims-world.ts';
import { LoadEngine } from './src/load/engine.ts';
import { commonKeys } from './src/load/keys.ts';
import { subscriberRange } from './src/load/pattern.ts';
import { UserspaceBackend } from './src/ipsec/backends/userspace.ts';
import { systemClock } from './src/util/clock.ts';
import { fromHex } from './src/util/bytes.ts';
const N = Number(process.argv[2] ?? 1000);
const w = await startWorld({ subscribers: N });
const backend = await UserspaceBackend.create({ localIp: '127.0.0.1', encapPort: 0, clock: systemClock });
const e = new LoadEngine({
  range: subscriberRange({ impi: `00101{n:10}@${DOMAIN}`, count: N }), keys: commonKeys({ k: fromHex(K), opc: fromHex(OPC) }),
  pcscf: { address: '127.0.0.1', port: w.pcscf.port }, pcscfEncapPort: w.pcBackend.encapPort, locals: [{ ip: '127.0.0.1', backend }],
  modes: ['UDP-enc-tun'], rate: 500, rampMs: 0, concurrency: 50, holdMs: 40_000, expires: 3600, messageRate: 0, churnRate: 0, deregister: true, intervalMs: 1e9,
});
e.onAllRegistered = () => setTimeout(() => { (globalThis as any).gc?.(); console.log('registered', e.registered, writeHeapSnapshot('/tmp/prof/load.heapsnapshot')); e.abort(); }, 33_000);
await e.run();
await backend.close(); await w.close();
