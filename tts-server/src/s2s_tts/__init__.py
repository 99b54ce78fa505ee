"""s2s_tts: our own VibeVoice-Realtime engine and the server that speaks docs/tts-protocol.md."""
