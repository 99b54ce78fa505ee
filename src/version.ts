import pkg from '../package.json' with { type: 'json' };

/** This worker's version, sent to RunPod as `runpod_version` and shown in logs. */
export const WORKER_VERSION: string = `s2s-worker/${pkg.version}`;
