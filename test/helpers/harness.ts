/**
 * Starts the local RunPod API and a real QueueWorker in this process, and gives the real
 * `runpod-sdk` client pointed at it.
 */
import { readWorkerConfig } from '../../handler/config.js';
import { LocalRunpodApi, type LocalRunpodApiOptions, type SimulatedJob } from '../../handler/local/runpod-api.js';
import type { HandlerDefinition } from '../../handler/runtime/types.js';
import { QueueWorker } from '../../handler/runtime/worker.js';
import { Logger } from '../../src/log/logger.js';
import { PlatformProxyDouble, type HoldRule } from '../doubles/platform-proxy-double.js';
import { sdkEndpoint, type SdkEndpoint } from './sdk.js';

export const API_KEY = 'test-key';

export interface Harness {
  api: LocalRunpodApi;
  endpoint: SdkEndpoint;
  worker: QueueWorker;
  proxy: PlatformProxyDouble | null;
  logs: string[];
  workerDone: Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  handler: HandlerDefinition;
  env?: Record<string, string>;
  api?: LocalRunpodApiOptions;
  /** Put a PlatformProxyDouble between the worker and the API. */
  proxy?: boolean;
  /** Answers the proxy holds back, from the worker's first request on. */
  proxyHolds?: HoldRule[];
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const logs: string[] = [];
  const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => logs.push(line) });
  const api = await LocalRunpodApi.start({ port: 0, apiKey: API_KEY, workerPollHoldMs: 5_000, streamHoldMs: 2_000, ...options.api });
  const proxy = options.proxy || options.proxyHolds ? await PlatformProxyDouble.start(api.url) : null;
  for (const hold of options.proxyHolds ?? []) proxy!.holdAnswers(hold);
  const workerEnv = proxy ? proxy.rewriteEnv(api.workerEnv(), api.url) : api.workerEnv();
  const config = readWorkerConfig({ RUNPOD_POD_ID: 'worker-1', RUNPOD_PING_INTERVAL: '200', ...workerEnv, ...options.env });
  const worker = new QueueWorker({ config: { ...config, platform: config.platform! }, handler: options.handler, log });
  const workerDone = worker.run();
  const endpoint = sdkEndpoint(api.baseUrl, api.endpointId, API_KEY);
  return {
    api,
    endpoint,
    worker,
    proxy,
    logs,
    workerDone,
    async close() {
      worker.drain();
      await workerDone;
      await proxy?.close();
      await api.close();
    },
  };
}

export async function waitFor<T>(probe: () => T | undefined | false | null, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Checks that a worker posted nothing for a job after it heard job-stop: at most the one post that
 * may already have been in flight (arriving within 100 ms), and nothing later.
 */
export async function expectNothingPostedAfterStop(job: () => Readonly<SimulatedJob> | undefined): Promise<void> {
  await waitFor(() => job()?.stopDeliveredAt !== null);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const { stopDeliveredAt, latePosts } = job()!;
  const afterStop = latePosts.filter((at) => at > stopDeliveredAt!);
  if (afterStop.length > 1 || afterStop.some((at) => at > stopDeliveredAt! + 100)) {
    throw new Error(`worker posted ${afterStop.length} time(s) after job-stop, the last ${afterStop.at(-1)! - stopDeliveredAt!} ms after it`);
  }
}
