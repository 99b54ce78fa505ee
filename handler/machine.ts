/**
 * What this machine offers the engines, looked at once at start so `S2S_DEVICE=auto` is resolved
 * once for all of them (handler/pipeline-config.ts). Cheap file checks only: no engine is loaded.
 */
import { existsSync, readdirSync } from 'node:fs';
import { sherpaHasCuda } from '../src/asr/sherpa-whisper-asr.js';

export interface Machine {
  /** An NVIDIA GPU is visible to this process (its device files exist, as the NVIDIA container runtime makes them). */
  nvidiaGpu: boolean;
  /** sherpa-onnx has its CUDA libraries (the GPU image swaps them in; the npm build is CPU-only). */
  sherpaCuda: boolean;
}

export function probeMachine(devDir = '/dev'): Machine {
  return { nvidiaGpu: hasNvidiaGpu(devDir), sherpaCuda: sherpaHasCuda() };
}

/** `nvidiactl` and at least one `nvidia<N>` device: a driver and a GPU assigned to this container. */
export function hasNvidiaGpu(devDir: string): boolean {
  try {
    return existsSync(`${devDir}/nvidiactl`) && readdirSync(devDir).some((name) => /^nvidia\d+$/.test(name));
  } catch {
    return false;
  }
}
