// The NAT tests' agent (run in a lab namespace with lab.spawnNode): the product's net and UE nodes
// of `imsec demo --nat`, plus test-only UE commands that send unauthenticated ESP-in-UDP from a
// new source port (a replayed packet, a forged ICV): the P-CSCF must not move port_Uenc for them.
//   agent.ts net '{NetAgentOptions}' | agent.ts ue '{UeAgentOptions}'
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { serveAgent, type AgentServer } from '../../../src/cli/demo/agent-protocol.ts';
import { agentOptions, type NetAgentOptions, type UeAgentOptions } from '../../../src/cli/demo/nat-common.ts';
import { startNetNode } from '../../../src/cli/demo/nat-net-node.ts';
import { startUeNode } from '../../../src/cli/demo/nat-ue-node.ts';

const role = process.argv[2];
process.argv.splice(2, 1);
let server: AgentServer | undefined;

/** The ESP-in-UDP payload of an outer IPv4/IPv6 packet the backend logged (undefined for keepalives). */
function espOf(ip: Uint8Array): Uint8Array | undefined {
  const hdr = ip[0]! >> 4 === 4 ? (ip[0]! & 0x0f) * 4 : 40;
  const esp = ip.subarray(hdr + 8);
  return esp.length > 1 ? esp : undefined;
}

/** Sends `bytes` from a fresh socket (a new source port, so a new NAT mapping) to host:port. */
async function sendFromNewPort(localIp: string, host: string, port: number, bytes: Uint8Array): Promise<number> {
  const s = createSocket(isIP(localIp) === 6 ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, localIp, () => r()));
  const src = s.address().port;
  await new Promise<void>((r, j) => s.send(bytes, port, host, (e) => (e ? j(e) : r())));
  await new Promise<void>((r) => s.close(() => r()));
  return src;
}

try {
  if (role === 'net') {
    const node = await startNetNode(agentOptions<NetAgentOptions>(), () => server);
    server = serveAgent(node.handlers, node.stop);
    server.emit('ready', node.facts);
  } else if (role === 'ue') {
    const o = agentOptions<UeAgentOptions>();
    const lastEsp = new Map<number, Uint8Array>();
    const node = await startUeNode(o, () => server, {
      wireLog: (k, ip, dir) => {
        const esp = dir === 'out' ? espOf(ip) : undefined;
        if (esp) lastEsp.set(k, Uint8Array.from(esp));
      },
    });
    const to = { host: o.pcscf.address, port: o.pcscf.encapPort ?? 4500 };
    const last = (a: Record<string, unknown>) => {
      const esp = lastEsp.get(Number(a.ue ?? 0));
      if (!esp) throw new Error('this UE has sent no ESP yet');
      return esp;
    };
    server = serveAgent(
      {
        ...node.handlers,
        /** Replays the UE's last ESP packet from a new port: the replay window must drop it. */
        replay: async (a) => ({ src_port: await sendFromNewPort(o.localIp, to.host, to.port, last(a)) }),
        /** A packet with the UE's SPI, a fresh sequence number and a wrong ICV, from a new port. */
        forge: async (a) => {
          const esp = Uint8Array.from(last(a));
          const dv = new DataView(esp.buffer);
          dv.setUint32(4, dv.getUint32(4) + 1000);
          esp[esp.length - 1]! ^= 0xff;
          return { src_port: await sendFromNewPort(o.localIp, to.host, to.port, esp) };
        },
      },
      node.stop,
    );
    server.emit('ready', {
      ues: node.ues.map((h) => ({ ue: h.k, impi: h.ue.id.impi, encap_port: h.backend.encapPort, plain_port: h.ue.plainPort })),
    });
  } else {
    throw new Error(`usage: agent.ts net|ue '{json}', got ${JSON.stringify(role)}`);
  }
} catch (e) {
  process.stderr.write(`test agent ${role}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
