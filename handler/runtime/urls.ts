/**
 * RunPod's webhook URL templates (PROTOCOLS.md section 1). `$RUNPOD_POD_ID` and
 * `$RUNPOD_GPU_TYPE_ID` are filled once; `$ID` is the worker id in job-take and the job id in
 * job-done / job-stream. Templates already carry a query string, so parameters are appended
 * with `&` when a `?` is present.
 */
import type { PlatformUrls } from '../config.js';

export function withParams(url: string, params: Record<string, string | number>): string {
  const query = Object.entries(params)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join('&');
  if (!query) return url;
  return url + (url.includes('?') ? '&' : '?') + query;
}

export class PlatformUrlBuilder {
  readonly #jobTake: string;
  readonly #jobDone: string;
  readonly #jobStream: string;
  readonly #ping: string | null;

  constructor(templates: PlatformUrls, workerId: string, gpuTypeId: string | null) {
    const fill = (template: string) => {
      let url = template.replaceAll('$RUNPOD_POD_ID', workerId);
      if (gpuTypeId !== null) url = url.replaceAll('$RUNPOD_GPU_TYPE_ID', gpuTypeId);
      return url;
    };
    this.#jobTake = fill(templates.jobTake).replaceAll('$ID', workerId);
    this.#jobDone = fill(templates.jobDone);
    this.#jobStream = fill(templates.jobStream);
    this.#ping = templates.ping === null ? null : fill(templates.ping);
  }

  jobTake(jobInProgress: boolean, batchSize: number): string {
    if (batchSize > 1) {
      return withParams(this.#jobTake.replace('/job-take/', '/job-take-batch/'), {
        job_in_progress: jobInProgress ? 1 : 0,
        batch_size: batchSize,
      });
    }
    return withParams(this.#jobTake, { job_in_progress: jobInProgress ? 1 : 0 });
  }

  jobStop(): string {
    return this.#jobTake.replace('/job-take/', '/job-stop/');
  }

  jobDone(jobId: string, isStream: boolean): string {
    return withParams(this.#jobDone.replaceAll('$ID', jobId), { isStream: String(isStream) });
  }

  jobStream(jobId: string): string {
    return withParams(this.#jobStream.replaceAll('$ID', jobId), { isStream: 'false' });
  }

  ping(jobIds: readonly string[], version: string): string | null {
    if (this.#ping === null) return null;
    // Commas stay literal: the platform reads `job_id=a,b`.
    const ids = jobIds.map(encodeURIComponent).join(',');
    const separator = this.#ping.includes('?') ? '&' : '?';
    return `${this.#ping}${separator}job_id=${ids}&runpod_version=${encodeURIComponent(version)}`;
  }
}
