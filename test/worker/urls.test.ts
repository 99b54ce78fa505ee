import { describe, expect, it } from 'vitest';
import { PlatformUrlBuilder, withParams } from '../../handler/runtime/urls.js';

const templates = {
  jobTake: 'https://api.runpod.ai/v2/ep1/job-take/$RUNPOD_POD_ID?gpu=$RUNPOD_GPU_TYPE_ID',
  jobDone: 'https://api.runpod.ai/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=$RUNPOD_GPU_TYPE_ID',
  jobStream: 'https://api.runpod.ai/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=$RUNPOD_GPU_TYPE_ID',
  ping: 'https://api.runpod.ai/v2/ep1/ping/$RUNPOD_POD_ID?gpu=$RUNPOD_GPU_TYPE_ID',
};

describe('RunPod URL templates', () => {
  const urls = new PlatformUrlBuilder(templates, 'w42', 'NVIDIA L4');

  it('fills the worker id, GPU type and job id, appending with & after an existing query', () => {
    expect(urls.jobTake(false, 1)).toBe('https://api.runpod.ai/v2/ep1/job-take/w42?gpu=NVIDIA L4&job_in_progress=0');
    expect(urls.jobTake(true, 4)).toBe('https://api.runpod.ai/v2/ep1/job-take-batch/w42?gpu=NVIDIA L4&job_in_progress=1&batch_size=4');
    expect(urls.jobDone('job-7', true)).toBe('https://api.runpod.ai/v2/ep1/job-done/w42/job-7?gpu=NVIDIA L4&isStream=true');
    expect(urls.jobStream('job-7')).toBe('https://api.runpod.ai/v2/ep1/job-stream/w42/job-7?gpu=NVIDIA L4&isStream=false');
    expect(urls.jobStop()).toBe('https://api.runpod.ai/v2/ep1/job-stop/w42?gpu=NVIDIA L4');
    expect(urls.ping(['a', 'b'], 's2s/1')).toBe('https://api.runpod.ai/v2/ep1/ping/w42?gpu=NVIDIA L4&job_id=a,b&runpod_version=s2s%2F1');
  });

  it('uses ? when the template has no query string', () => {
    expect(withParams('http://x/job-take/w', { job_in_progress: 0 })).toBe('http://x/job-take/w?job_in_progress=0');
  });

  it('replaces $ID in the job-take template with the worker id', () => {
    const legacy = new PlatformUrlBuilder({ ...templates, jobTake: 'http://x/v2/e/job-take/$ID' }, 'w1', null);
    expect(legacy.jobTake(false, 1)).toBe('http://x/v2/e/job-take/w1?job_in_progress=0');
  });
});
