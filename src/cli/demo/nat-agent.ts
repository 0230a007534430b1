// The agent `imsec demo --nat` starts inside a lab namespace (lab.spawnNode): `nat-agent.ts net
// '{options}'` runs HSS, S-CSCF and P-CSCF; `nat-agent.ts ue '{options}'` runs UEs. It prints
// {"ev":"ready",…} and then answers the commands of agent-protocol.ts until `quit`.
import { serveAgent, type AgentServer } from './agent-protocol.ts';
import { agentOptions, type NetAgentOptions, type UeAgentOptions } from './nat-common.ts';
import { startNetNode } from './nat-net-node.ts';
import { startUeNode } from './nat-ue-node.ts';

const role = process.argv[2];
process.argv.splice(2, 1);
let server: AgentServer | undefined;
try {
  if (role === 'net') {
    const node = await startNetNode(agentOptions<NetAgentOptions>(), () => server);
    server = serveAgent(node.handlers, node.stop);
    server.emit('ready', node.facts);
  } else if (role === 'ue') {
    const node = await startUeNode(agentOptions<UeAgentOptions>(), () => server);
    server = serveAgent(node.handlers, node.stop);
    server.emit('ready', {
      ues: node.ues.map((h) => ({ ue: h.k, impi: h.ue.id.impi, encap_port: h.backend.encapPort, plain_port: h.ue.plainPort })),
    });
  } else {
    throw new Error(`usage: nat-agent.ts net|ue '{json options}', got role ${JSON.stringify(role)}`);
  }
} catch (e) {
  process.stderr.write(`nat-agent ${role}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
