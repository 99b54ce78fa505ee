/**
 * The worker the calibrated benches talk to: the real handler (scheduler, session core, WebSocket server) over
 * the calibrated engine doubles, serving live sessions on a loopback port. Shared by the latency and capacity
 * benches, which differ only in the engines and the config they give it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PipelineConfig } from '../handler/pipeline-config.js';
import { createHandlerFor, type S2sHandler } from '../handler/s2s-handler.js';
import { Logger } from '../src/log/logger.js';
import type { Engines } from '../src/pipeline/engines.js';

export interface CalibratedWorker {
  /** The native session URL, token included. */
  url: string;
  handler: S2sHandler;
  close(): Promise<void>;
}

export async function serveCalibratedWorker(engines: Engines, config: PipelineConfig, token: string): Promise<CalibratedWorker> {
  const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  const handler = createHandlerFor(engines, config, log);
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, token);
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=${token}`,
    handler,
    async close() {
      await handler.dispose();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
