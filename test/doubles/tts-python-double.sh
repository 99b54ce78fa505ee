#!/usr/bin/env bash
# The builder tests' stand-in for the Python that runs s2s_tts (S2S_TTS_PYTHON): see tts-python-double.ts.
exec "${TTS_PYTHON_DOUBLE_NODE:-node}" --import tsx "$(dirname "$0")/tts-python-double.ts" "$@"
