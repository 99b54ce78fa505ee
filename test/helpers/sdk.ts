/**
 * The real `runpod-sdk` client, pointed at a local RunPod API. The SDK's own types leave out
 * `output`/`error` on some unions, so this view states what the API actually returns.
 */
import runpodSdk from 'runpod-sdk';

export interface JobView {
  id: string;
  status: string;
  output?: unknown;
  error?: string;
  delayTime?: number;
  executionTime?: number;
}

export interface SdkEndpoint {
  run(request: unknown, timeoutMs?: number): Promise<{ id: string; status: string }>;
  runSync(request: unknown, timeoutMs?: number): Promise<JobView>;
  status(id: string): Promise<JobView>;
  statusSync(id: string, timeoutMs?: number): Promise<JobView>;
  stream(id: string): AsyncGenerator<{ output: unknown }>;
  cancel(id: string): Promise<{ id: string; status: string }>;
  health(): Promise<{ jobs: Record<string, number>; workers: { idle: number; running: number } }>;
  purgeQueue(): Promise<{ removed: number; status: string }>;
}

export function sdkEndpoint(baseUrl: string, endpointId: string, apiKey = 'local-key'): SdkEndpoint {
  return runpodSdk(apiKey, { baseUrl }).endpoint(endpointId) as unknown as SdkEndpoint;
}
