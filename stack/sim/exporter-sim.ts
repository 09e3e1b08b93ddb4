/**
 * A simulated inference host for tests and demos: one HTTP server whose `/metrics` serves, in
 * Prometheus text format 0.0.4, what a vLLM server, NVIDIA's DCGM exporter and the node exporter
 * would serve for one GPU host, following a scripted scenario. The exposition comes from
 * exporter-model.ts, the scenarios from exporter-scenarios.ts; on request the server misbehaves
 * (an HTML page, HTTP 500, or no answer).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createExporterModel, type ExporterSimOptions } from './exporter-model.js';

export type ExporterFault = 'none' | 'html' | 'http-500' | 'hang';

export interface ExporterSim {
  /** http://127.0.0.1:<port> */
  url: string;
  /** <url>/metrics */
  metricsUrl: string;
  port: number;
  /** Switch the scenario phase from now on (counters keep their values). */
  setPhase(phase: string): void;
  phase(): string;
  /** Make `/metrics` misbehave: an HTML page, HTTP 500, or never answer. */
  setFault(fault: ExporterFault): void;
  close(): Promise<void>;
}

const INDEX_HTML = `<!DOCTYPE html>
<html><head><title>Simulated exporter</title></head>
<body><h1>Simulated vLLM / DCGM / node exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>
`;

/** Start the simulated exporters' HTTP server on 127.0.0.1. */
export async function startExporterSim(opts: ExporterSimOptions): Promise<ExporterSim> {
  const model = createExporterModel(opts);
  let fault: ExporterFault = 'none';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      if (fault === 'hang') return; // never answers; close() ends the connection
      if (fault === 'http-500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
        return;
      }
      if (fault === 'html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(INDEX_HTML);
        return;
      }
      let body: string;
      try {
        body = model.render();
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/' || path === '') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(INDEX_HTML);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    metricsUrl: `${url}/metrics`,
    port,
    setPhase: (p) => model.setPhase(p),
    phase: () => model.phase(),
    setFault(f) {
      fault = f;
    },
    close() {
      closed ??= new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
