// `imsec ue register|message`: a UE against any P-CSCF (24.229 §5.1.1, 33.203 §7; Kamailio 5.6
// needs --local-port 5060, digest §17.1). One line per step (JSON with --json); never keys.
// Exit 0 done, 1 registration or request failed, 2 bad input.
import { guardProcess } from './serve-guard.ts';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import { parseAlgPairList, type AlgPair, type UsableMod } from '../secagree/index.ts';
import { Ue, type UeOptions } from '../ue/index.ts';
import type { RegistrationResult } from '../ue/index.ts';
import { InputError } from '../util/errors.ts';
import { assertTransport, BACKEND_HELP, openBackend, parseBackend, parseXfrmInstance, XFRM_INSTANCE_HELP } from './backend-choice.ts';
import { EXIT_CHECK_FAILED } from './output.ts';
import { uriArg } from './identity-args.ts';
import { systemClock } from '../util/clock.ts';
import { parseHostPortArg as parseHostPort, parseIntArg, parseKeyHex } from './parse-args.ts';

interface UeCliOptions {
  pcscf: string;
  impi: string;
  impu: string;
  k: string;
  op?: string;
  opc?: string;
  domain?: string;
  local?: string;
  localPort: string;
  mode: string;
  offer: string[];
  expires: string;
  regAwaitAuth?: string;
  acceptAnySqn?: boolean;
  encapPort: string;
  pcscfEncapPort: string;
  json?: boolean;
  transport?: string;
  backend?: string;
  xfrmInstance?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** HOST:PORT, [IPv6]:PORT or HOST (port 5060). */
export function parseHostPortArg(s: string, flag: string): { host: string; port: number } {
  const { address, port } = parseHostPort(s, flag, { defaultPort: 5060, minPort: 1 });
  return { host: address, port };
}

const intArg = parseIntArg;

/** K, OP and OPc: the error never quotes the value. */
const secretHex = (hex: string, flag: string): Uint8Array => parseKeyHex(hex, flag, 16);

function modesOf(s: string): UsableMod[] {
  switch (s.toLowerCase()) {
    case 'trans':
      return ['trans'];
    case 'udp-enc-tun':
      return ['UDP-enc-tun'];
    case 'both':
      return ['trans', 'UDP-enc-tun'];
    default:
      throw new InputError(`--mode: trans, udp-enc-tun or both, got ${JSON.stringify(s)}`);
  }
}

/**
 * The userspace backend carries SIP over UDP inside the SAs; TCP would need a TCP stack over
 * userspace ESP. Say so plainly instead of failing later (the xfrm backend carries both).
 */
export function assertUdpOverUserspace(transport: string | undefined): void {
  assertTransport(transport, 'userspace');
}

/** The source address the OS would use towards `ip` (a connected UDP socket sends nothing). */
async function routeSource(ip: string): Promise<string> {
  const s = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(9, ip, () => resolve());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), snakeKeys(x)]));
  return v;
}

/** One line per event: `HH:MM:SS.mmm text`, or a JSON object (snake_case) with --json. */
function printer(json: boolean) {
  return (event: string, text: string, data: Record<string, unknown> = {}): void => {
    const t = new Date();
    if (json) process.stdout.write(JSON.stringify(snakeKeys({ t: t.toISOString(), event, text, ...data })) + '\n');
    else process.stdout.write(`${t.toISOString().slice(11, 23)}  ${text}\n`);
  };
}

async function startUe(o: UeCliOptions, say: ReturnType<typeof printer>): Promise<{ ue: Ue; backend: IpsecBackend }> {
  if ((o.op === undefined) === (o.opc === undefined)) throw new InputError('give exactly one of --op and --opc');
  const kind = parseBackend(o.backend);
  // auto: UDP, and TCP inside the SAs for a request over 1,300 octets where the backend carries TCP (RFC 3261 §18.1.1).
  const transport = (o.transport ?? 'auto').toLowerCase() === 'auto' ? 'auto' : assertTransport(o.transport, kind);
  const instance = parseXfrmInstance(o.xfrmInstance);
  const pc = parseHostPortArg(o.pcscf, '--pcscf');
  const k = secretHex(o.k, '--k');
  const secret = o.op !== undefined ? { op: secretHex(o.op, '--op') } : { opc: secretHex(o.opc!, '--opc') };
  const offers: AlgPair[] | undefined = o.offer.length ? o.offer.flatMap((s) => parseAlgPairList(s, '--offer')) : undefined;
  const modes = modesOf(o.mode);
  const expires = intArg(o.expires, '--expires', 1, 0xffffffff);
  const regAwaitAuthS = o.regAwaitAuth === undefined ? undefined : intArg(o.regAwaitAuth, '--reg-await-auth', 1, 999_999);
  const localPort = intArg(o.localPort, '--local-port', 0, 65535);
  const encapPort = intArg(o.encapPort, '--encap-port', 0, 65535);
  const pcscfEncapPort = intArg(o.pcscfEncapPort, '--pcscf-encap-port', 1, 65535);
  if (o.local !== undefined && isIP(o.local) === 0) throw new InputError(`--local: not an IP address: ${JSON.stringify(o.local)}`);
  if (!o.domain && !o.impi.includes('@')) throw new InputError('--domain: required when the IMPI has no realm (user@realm)');
  uriArg(o.impu, '--impu');
  let pcscfIp = pc.host;
  if (isIP(pcscfIp) === 0) {
    try {
      pcscfIp = (await lookup(pc.host, o.local ? { family: isIP(o.local) } : {})).address;
    } catch {
      throw new InputError(`--pcscf: cannot resolve ${JSON.stringify(pc.host)}`);
    }
  }
  const localIp = o.local ?? (await routeSource(pcscfIp));
  const backend = await openBackend(kind, { localIp, encapPort, clock: systemClock, ...(instance !== undefined && { instance }) });
  const opts: UeOptions = {
    impi: o.impi,
    impu: o.impu,
    ...(o.domain && { domain: o.domain }),
    pcscf: { address: pcscfIp, port: pc.port },
    localIp,
    localPort,
    k,
    ...secret,
    ...(o.acceptAnySqn && { usim: { acceptAnySqn: true } }),
    ...(offers && { offers }),
    modes,
    backend,
    pcscfEncapPort,
    expires,
    transport,
    ...(regAwaitAuthS !== undefined && { regAwaitAuthMs: regAwaitAuthS * 1000 }),
  };
  let ue: Ue;
  try {
    ue = await Ue.create(opts);
  } catch (e) {
    await backend.close();
    throw e;
  }
  ue.on('step', (t) => say('step', t));
  ue.on('sa-created', (s) => say('sa-created', `SA set ${s.id} installed`, { set: s.id, sas: s.summary() }));
  ue.on('sa-deleted', (s, why) => say('sa-deleted', `SA set ${s.id} removed (${why})`, { set: s.id, why }));
  ue.on('failed', (reason, detail) => say('failed', `failed: ${reason}: ${detail}`, { reason, detail }));
  say(
    'start',
    `UE ${o.impi} (${o.impu}) on ${localIp}:${ue.plainPort} → P-CSCF ${pcscfIp}:${pc.port}, mode ${modes.join('+')}, ${kind} backend, SIP over ${transport !== 'auto' ? transport : kind === 'xfrm' ? 'udp (tcp above 1,300 octets)' : 'udp'} inside the SAs`,
    {
      impi: o.impi,
      impu: o.impu,
      local: `${localIp}:${ue.plainPort}`,
      pcscf: `${pcscfIp}:${pc.port}`,
      backend: kind,
      transport,
    },
  );
  return { ue, backend };
}

async function stop(ue: Ue, backend: IpsecBackend, say: ReturnType<typeof printer>, deregister: boolean): Promise<void> {
  if (deregister) {
    const r = await ue.deregister().catch(() => undefined);
    if (r && !r.ok) say('step', `de-registration not confirmed (${r.reason}: ${r.detail}); every SA removed locally`);
  }
  await ue.close();
  await backend.close();
}

function reportFailure(r: Extract<RegistrationResult, { ok: false }>): void {
  process.stderr.write(`imsec: registration failed: ${r.reason}${r.status ? ` (${r.status})` : ''}: ${r.detail}\n`);
  process.exitCode = EXIT_CHECK_FAILED;
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--pcscf <host:port>', "the P-CSCF's unprotected address (port default 5060)")
    .requiredOption('--impi <nai>', 'private identity (user@realm)')
    .requiredOption('--impu <uri>', 'public identity (From/To)')
    .requiredOption('--k <hex>', 'K, 16 octets')
    .option('--op <hex>', 'OP, 16 octets')
    .option('--opc <hex>', 'OPc, 16 octets')
    .option('--domain <d>', 'home domain (default: the realm of the IMPI)')
    .option('--local <ip>', 'local address (default: the route source towards the P-CSCF)')
    .option('--local-port <n>', 'unprotected local port (Kamailio 5.6 needs 5060)', '0')
    .option('--mode <m>', 'modes to offer: trans, udp-enc-tun or both (trans needs CAP_NET_RAW)', 'trans')
    .option('--offer <alg/ealg>', 'an algorithm pair to offer (repeat; default: the five usual pairs)', collect, [])
    .option('--expires <s>', 'requested registration expiry in seconds', '600000')
    .option('--reg-await-auth <s>', 'lifetime of the temporary SA set in seconds (24.229 Table 7.8.1 reg-await-auth, default 240)')
    .option('--accept-any-sqn', 'USIM accepts any SQN (test networks; the MAC is still checked)')
    .option('--encap-port <n>', 'local ESP-in-UDP port for udp-enc-tun (0: any)', '0')
    .option('--pcscf-encap-port <n>', "the P-CSCF's ESP-in-UDP port", '4500')
    .option(
      '--transport <t>',
      'SIP transport inside the SAs: auto (UDP; with --backend xfrm TCP for requests over 1,300 octets, and for every request once the registration went over TCP), udp or tcp (tcp needs --backend xfrm)',
      'auto',
    )
    .option('--backend <b>', BACKEND_HELP, 'userspace')
    .option('--xfrm-instance <n>', XFRM_INSTANCE_HELP)
    .option('--json', 'one JSON object per line');
}

export function registerUe(program: Command): void {
  const ue = program.command('ue').description('an IMS UE: IMS AKA registration with IPsec (33.203) against any P-CSCF');

  common(ue.command('register'))
    .description('register, stay registered (refreshing) until SIGINT/SIGTERM, then de-register and remove the SAs')
    .action(async (o: UeCliOptions) => {
      const say = printer(o.json === true);
      // The handlers go in before anything is printed: a signal with no listener kills the process
      // at once (no de-registration, SAs left at the P-CSCF).
      let wake: ((why: string) => void) | undefined;
      let stopped: string | undefined;
      const onSignal = (sig: NodeJS.Signals): void => {
        if (stopped !== undefined) process.exit(130); // a second signal: leave now
        stopped = sig;
        wake?.(sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const unguard = guardProcess();
      try {
        const { ue: u, backend } = await startUe(o, say);
        u.on('failed', () => wake?.('lost'));
        const r = await u.register();
        if (!r.ok) {
          await stop(u, backend, say, false);
          reportFailure(r);
          return;
        }
        say('registered', `registered for ${r.expires} s as ${r.impus.join(', ') || o.impu}; Ctrl-C de-registers`, { status: u.status() });
        const why = stopped ?? (await new Promise<string>((res) => (wake = res)));
        if (why === 'lost') {
          await stop(u, backend, say, false);
          process.stderr.write('imsec: the registration was lost\n');
          process.exitCode = EXIT_CHECK_FAILED;
          return;
        }
        say('step', `${why}: de-registering`);
        await stop(u, backend, say, true);
      } finally {
        unguard();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  common(ue.command('message'))
    .description('register, send one MESSAGE, print the response status, de-register')
    .requiredOption('--to <uri>', 'Request-URI of the MESSAGE')
    .requiredOption('--text <s>', 'the message text (text/plain)')
    .action(async (o: UeCliOptions & { to: string; text: string }) => {
      const say = printer(o.json === true);
      uriArg(o.to, '--to'); // before registering: a bad target must not cost a registration
      const unguard = guardProcess();
      try {
        const { ue: u, backend } = await startUe(o, say);
        const r = await u.register();
        if (!r.ok) {
          await stop(u, backend, say, false);
          reportFailure(r);
          return;
        }
        const res = await u.sendMessage(o.to, o.text);
        say('response', `MESSAGE ${res.status} ${res.reason}`, { status: res.status, reason: res.reason });
        await stop(u, backend, say, true);
        if (res.status < 200 || res.status >= 300) process.exitCode = EXIT_CHECK_FAILED;
      } finally {
        unguard();
      }
    });
}
