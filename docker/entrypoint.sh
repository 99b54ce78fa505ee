#!/bin/sh
# The image's entrypoint. RunPod mounts network volumes owned by root, and the worker and the model
# builder run as the unprivileged user `worker`. So the container starts as root only for this:
# create the models folder (S2S_MODELS_DIR, default /runpod-volume/s2s-models, when the volume is
# mounted) and give it to `worker`; then run the command as `worker`. Started as any other user
# (`docker run --user ...`), it runs the command unchanged.
set -eu

if [ "$(id -u)" = 0 ]; then
  models_dir="${S2S_MODELS_DIR:-}"
  if [ -z "$models_dir" ] && [ -d /runpod-volume ]; then models_dir=/runpod-volume/s2s-models; fi
  if [ -n "$models_dir" ]; then
    mkdir -p "$models_dir"
    # Filled as root before (a Pod's web terminal): hand the files over once, not at every start.
    if [ "$(stat -c %U "$models_dir")" != worker ]; then chown -R worker:worker "$models_dir"; fi
  fi
  # The environment (RUNPOD_*, S2S_*) passes through; only the home folder becomes worker's.
  export HOME=/home/worker USER=worker LOGNAME=worker
  exec setpriv --reuid=worker --regid=worker --init-groups -- "$@"
fi
exec "$@"
