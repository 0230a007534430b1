// `--metrics ADDR:PORT`: a small HTTP server with Prometheus text at /metrics (prom-client), /healthz
// (the process answers) and /readyz (the service is listening and not stopping). Nothing else is
// served; the listener belongs on a management address.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { InputError } from '../util/errors.ts';
import { parseHostPortArg } from './parse-args.ts';

/** A registry with the process metrics (CPU, memory, event-loop lag) and a `service` label. */
export function newRegistry(service: string): Registry {
  const r = new Registry();
  r.setDefaultLabels({ service });
  collectDefaultMetrics({ register: r, prefix: 'imsec_' });
  return r;
}

export function parseMetricsListen(s: string): { address: string; port: number } {
  return parseHostPortArg(s, '--metrics');
}

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(o: { listen: string; registry: Registry; ready: () => boolean }): Promise<MetricsServer> {
  const { address, port } = parseMetricsListen(o.listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ok = o.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        (e: unknown) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics, /healthz, /readyz\n');
    }
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new InputError(`--metrics: cannot listen on ${o.listen}: ${e.message}`)));
    server.listen(port, address, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: a.address,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
