"""Our own VibeVoice-Realtime-0.5B: model modules, checkpoint loading, sampler and the batched engine."""
