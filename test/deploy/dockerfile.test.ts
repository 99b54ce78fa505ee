/**
 * The Dockerfile cannot be built here (no Docker engine, no GitHub downloads), so its promises are
 * checked statically: every file it copies exists, every image and version is pinned (and agrees with
 * package.json, the lock file and .ci/node-24), sherpa-onnx's GPU archive is named as its release
 * workflow names it and verified against a pinned sha256, the CUDA libraries are proven loadable with
 * `ldd`, our TTS engine (tts-server) is installed with its pinned dependencies and a CUDA 12 torch while
 * upstream's demo app and its packages stay out, the TTS port is never exposed, and the worker runs as a
 * non-root user.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const dockerfile = await readFile('Dockerfile', 'utf8');
const entrypoint = await readFile('docker/entrypoint.sh', 'utf8');
const nodeInstaller = await readFile('.ci/node-24', 'utf8');
const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string>; engines: Record<string, string> };
const lock = JSON.parse(await readFile('package-lock.json', 'utf8')) as { packages: Record<string, { version: string }> };
const pyproject = await readFile('tts-server/pyproject.toml', 'utf8');
const hub = JSON.parse(await readFile('.runpod/hub.json', 'utf8')) as { config: { allowedCudaVersions: string[] } };
// Join continuation lines and drop comments.
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const args = new Map(instructions.filter((l) => l.startsWith('ARG ')).map((l) => l.slice(4).split('=') as [string, string]));
const runs = instructions.filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4));
/** The RUN step that contains a string (exactly one). */
const runWith = (text: string): string => {
  const found = runs.filter((r) => r.includes(text));
  expect(found, `one RUN step with ${text}`).toHaveLength(1);
  return found[0]!;
};

describe('Dockerfile', () => {
  it('copies only files that exist in the repository', () => {
    const copies = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.slice(5).split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1);
      for (const source of sources) expect(existsSync(source), `${copy}: ${source}`).toBe(true);
    }
  });

  it('pins every image: each FROM is an earlier stage or a tagged image, never :latest', () => {
    const stages: string[] = [];
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) {
      const [, image, as, stage] = from.split(/\s+/);
      const resolved = image!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '');
      if (!stages.includes(resolved)) {
        expect(resolved, from).toMatch(/^[\w./-]+:[\w.-]+$/);
        expect(resolved, from).not.toMatch(/:latest$/);
      }
      if (as?.toUpperCase() === 'AS' && stage) stages.push(stage);
    }
  });

  it('pins every version, and they agree with package.json, the lock file and CI', () => {
    for (const [name, value] of args) expect(value, `ARG ${name}`).toMatch(/\S/);
    // Node 24 LTS, the same release CI installs, and what package.json asks for.
    expect(args.get('NODE_VERSION')).toMatch(/^24\.\d+\.\d+$/);
    expect(nodeInstaller).toContain(`NODE_VERSION=${args.get('NODE_VERSION')}\n`);
    expect(pkg.engines['node']).toBe('>=24');
    // Exact versions in package.json, and npm ci (the lock file) in the image.
    for (const [name, version] of Object.entries(pkg.dependencies)) expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
    expect(dockerfile).toMatch(/RUN npm ci\b/);
  });

  it('names sherpa-onnx GPU archive from its ARGs, as the release workflow does (linux_x64_cuda.py), of the locked sherpa-onnx', () => {
    const fetch = runWith('releases/download');
    expect(fetch).toContain('archive="sherpa-onnx-v${SHERPA_ONNX_VERSION}-cuda-12.x-cudnn-9.x-onnxruntime${SHERPA_ONNX_ORT_VERSION}-linux-x64-gpu"');
    expect(fetch).toContain('https://github.com/k2-fsa/sherpa-onnx/releases/download/v${SHERPA_ONNX_VERSION}/${archive}.tar.bz2');
    expect(args.get('SHERPA_ONNX_ORT_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    // sherpa-onnx-node asks for its platform package with ^: the lock file is what gets installed.
    const locked = lock.packages['node_modules/sherpa-onnx-linux-x64']?.version;
    expect(args.get('SHERPA_ONNX_VERSION')).toBe(locked);
    expect(pkg.dependencies['sherpa-onnx-node']).toBe(locked);
    // ... and the build compares the ARG with what npm ci installed, failing loudly.
    const check = runWith("require('./node_modules/sherpa-onnx-linux-x64/package.json').version");
    expect(check).toMatch(/if \[ "\$installed" != "\$\{SHERPA_ONNX_VERSION\}" \]; then .*echo "ERROR: .*exit 1/);
    // The swap happens before the bundle and the prune, so node_modules is copied into the runtime once.
    expect(dockerfile.indexOf('releases/download')).toBeLessThan(dockerfile.indexOf('RUN npm run build && npm prune --omit=dev'));
  });

  it('verifies the archive against a pinned sha256 and stops when the pin is empty or wrong', () => {
    expect(args.get('SHERPA_ONNX_GPU_SHA256')).toMatch(/^[0-9a-f]{64}$/);
    const fetch = runWith('releases/download');
    expect(fetch).toMatch(/if \[ -z "\$\{SHERPA_ONNX_GPU_SHA256\}" \]; then echo "ERROR: .*exit 1; fi/);
    expect(fetch).toContain('echo "${SHERPA_ONNX_GPU_SHA256}  /tmp/sherpa-gpu.tar.bz2" | sha256sum -c -');
    // Verified before it is unpacked.
    expect(fetch.indexOf('sha256sum -c')).toBeLessThan(fetch.indexOf('tar -xjf'));
    expect(fetch).toContain('test -f /tmp/sherpa-gpu/lib/libonnxruntime_providers_cuda.so');
    expect(fetch).toContain('node_modules/sherpa-onnx-linux-x64/');
  });

  it('proves with ldd that sherpa-onnx CUDA provider and node-llama-cpp CUDA 12 fallback load, and checks cuDNN 9', () => {
    const ldd = runWith('ldd_ok()');
    // Only the driver's libcuda.so.1 (mounted at run time) may be missing; anything else fails the build.
    expect(ldd).toContain("grep 'not found' | grep -v 'libcuda\\.so\\.1'");
    expect(ldd).toMatch(/echo "ERROR: \$2 cannot load here: \$missing" >&2; exit 1/);
    for (const lib of ['sherpa-onnx.node', 'libsherpa-onnx-c-api.so', 'libonnxruntime.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) expect(ldd).toContain(lib);
    // The paths are those the installed packages really have (the npm build has no CUDA provider:
    // those libraries come from the archive).
    for (const lib of ['sherpa-onnx.node', 'libsherpa-onnx-c-api.so', 'libonnxruntime.so']) expect(existsSync(`node_modules/sherpa-onnx-linux-x64/${lib}`), lib).toBe(true);
    const fallback = 'linux-x64-cuda-ext/bins/linux-x64-cuda/fallback/libggml-cuda.so';
    const mainDir = 'linux-x64-cuda/bins/linux-x64-cuda';
    expect(ldd).toContain(`fallback=$llama/${fallback}`);
    expect(ldd).toContain(`ldd_ok "$llama/${mainDir}" "$fallback"`);
    expect(ldd).toMatch(/test -f "\$fallback" \|\| \{ echo "ERROR: .*exit 1; \}/);
    expect(existsSync(`node_modules/@node-llama-cpp/${fallback}`)).toBe(true);
    expect(existsSync(`node_modules/@node-llama-cpp/${mainDir}/libggml-base.so`)).toBe(true);
    // cuDNN is dlopened (ldd cannot see it): the package's major version and the libraries are checked.
    expect(ldd).toContain("dpkg-query -W -f='${Version}' 'libcudnn9-cuda-12'");
    expect(ldd).toMatch(/case "\$cudnn" in 9\.\*\) .*\*\) echo "ERROR: .*exit 1;; esac/);
    expect(ldd).toContain('libcudnn.so.9');
    expect(args.get('CUDA_IMAGE')).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04$/);
  });

  it("the ldd check itself: passes a library whose dependencies are all here, fails loudly on node-llama-cpp's CUDA fallback on this machine without CUDA 12", () => {
    const ldd = runWith('ldd_ok()');
    const fn = ldd.slice(ldd.indexOf('ldd_ok()'), ldd.indexOf(' sherpa=/app'));
    const check = (dir: string, lib: string) => spawnSync('sh', ['-c', `set -eu; ${fn} ldd_ok "$1" "$2"`, 'sh', dir, lib], { encoding: 'utf8' });
    const sherpa = check('node_modules/sherpa-onnx-linux-x64', 'node_modules/sherpa-onnx-linux-x64/libsherpa-onnx-c-api.so');
    expect(sherpa.status, sherpa.stderr).toBe(0);
    expect(sherpa.stdout).toContain('ldd ok: node_modules/sherpa-onnx-linux-x64/libsherpa-onnx-c-api.so');
    const fallback = check('node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda', 'node_modules/@node-llama-cpp/linux-x64-cuda-ext/bins/linux-x64-cuda/fallback/libggml-cuda.so');
    const libraries = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '';
    const cuda12 = /libcudart\.so\.12\b/.test(libraries) && /libcublas\.so\.12\b/.test(libraries);
    if (cuda12) {
      expect(fallback.status, fallback.stderr).toBe(0);
      return;
    }
    // Without a CUDA 12 runtime (build machines have none) the build would stop here, naming what is
    // missing, but never the driver's libcuda.so.1, which only a GPU host has.
    expect(fallback.status).toBe(1);
    const error = fallback.stderr.split('\n').find((l) => l.startsWith('ERROR:'))!;
    expect(error).toMatch(/libggml-cuda\.so cannot load here: .*libcudart\.so\.12 => not found/);
    expect(error).not.toContain('libcuda.so.1');
    expect(error).not.toContain('libggml-base.so');
  });

  it('installs our TTS engine (tts-server) with its pinned dependencies and the pinned torch built for CUDA 12', () => {
    // The torch of the image is the one tts-server pins, from PyTorch's CUDA 12 index: the hosts' drivers
    // are CUDA 12.x (.runpod/hub.json), which PyPI's CUDA 13 build of this torch would not run on.
    const pinned = /"torch==([\d.]+)"/.exec(pyproject)?.[1];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(args.get('TORCH_VERSION')).toBe(pinned);
    expect(args.get('TORCH_INDEX')).toMatch(/^https:\/\/download\.pytorch\.org\/whl\/cu12\d$/);
    expect(hub.config.allowedCudaVersions.every((v) => v.startsWith('12.'))).toBe(true);
    const install = runWith('pip install --disable-pip-version-check /opt/tts-server');
    // torch first from the CUDA 12 index, so installing tts-server finds its pin satisfied.
    expect(install).toContain('pip install --disable-pip-version-check torch==${TORCH_VERSION} --index-url ${TORCH_INDEX}');
    expect(install.indexOf('--index-url ${TORCH_INDEX}')).toBeLessThan(install.indexOf('/opt/tts-server'));
    expect(install).toMatch(/^python3\.11 -m venv \/opt\/venv /);
    // The build proves the install: the CUDA 12 torch of the pinned version, the server importable.
    expect(install).toContain("assert v.startswith('${TORCH_VERSION}+cu12')");
    expect(install).toContain('import torch, s2s_tts.server, s2s_tts.__main__');
    expect(instructions).toContain('COPY tts-server/pyproject.toml /opt/tts-server/pyproject.toml');
    expect(instructions).toContain('COPY tts-server/src /opt/tts-server/src');
    expect(dockerfile).toMatch(/PATH=\/opt\/venv\/bin:\$PATH/);
    // s2s_tts needs Python 3.11+; the CUDA base (Ubuntu 22.04) brings it from its own archive.
    expect(/requires-python = ">=3\.11"/.test(pyproject)).toBe(true);
    expect(runWith('python3.11-venv')).toMatch(/apt-get install -y --no-install-recommends python3\.11 python3\.11-venv /);
  });

  it("keeps upstream's demo app and its packages out: no VibeVoice checkout, no vibevoice package, no transformers 4.51.3, no uvicorn", () => {
    for (const banned of [/github\.com\/microsoft\/VibeVoice/, /VIBEVOICE_(REPO|COMMIT)/, /\/opt\/VibeVoice/, /demo\/web/, /uvicorn/, /transformers==4\./, /\[streamingtts\]/, /pip install[^&;|]*vibevoice/i, /flash.?attn/i]) {
      expect(instructions.join('\n'), String(banned)).not.toMatch(banned);
    }
    // The build refuses an image in which the vibevoice package turns up anyway (a dependency pulling it in).
    expect(runWith('pip show vibevoice')).toMatch(/if pip show vibevoice >\/dev\/null 2>&1; then echo "ERROR: .*exit 1; fi/);
    // Nothing but the engine's own sources goes into the venv: no git clone at all.
    expect(runs.some((r) => /git clone/.test(r))).toBe(false);
  });

  it('never downloads onnxruntime CUDA libraries, and bundles the worker', () => {
    expect(dockerfile).toMatch(/ENV ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(pkg.scripts['build']).toBe('node builder/build.mjs');
  });

  it('leaves /app root-owned (no chown copy of node_modules) and runs the worker as `worker` through the entrypoint', () => {
    expect(dockerfile).not.toMatch(/chown -R\s+\S+\s+\/app/);
    expect(instructions.filter((l) => l.startsWith('COPY --from=build')).every((l) => !l.includes('--chown'))).toBe(true);
    expect(instructions).toContain('RUN useradd --create-home --uid 1000 worker');
    expect(instructions).toContain('ENTRYPOINT ["/usr/local/bin/s2s-entrypoint"]');
    expect(instructions).toContain('COPY docker/entrypoint.sh /usr/local/bin/s2s-entrypoint');
    expect(instructions.at(-1)).toBe('CMD ["node", "dist/handler.mjs"]');
    // Any USER must not be root; the entrypoint drops root for every command it runs.
    for (const user of instructions.filter((l) => l.startsWith('USER '))) expect(user).not.toMatch(/USER\s+(root|0)$/);
    expect(entrypoint).toContain('exec setpriv --reuid=worker --regid=worker --init-groups -- "$@"');
    expect(entrypoint).toMatch(/chown -R worker:worker "\$models_dir"/);
    expect(entrypoint).toContain('models_dir=/runpod-volume/s2s-models');
  });

  it('leaves out only binaries of other platforms, which the installed packages really have', () => {
    const prune = runWith('rm -rf node_modules/onnxruntime-node');
    const removed = prune.split('&&')[0]!.replace('rm -rf', '').trim().split(/\s+/);
    expect(removed.length).toBeGreaterThan(0);
    for (const path of removed) {
      expect(path, path).toMatch(/darwin|win32|arm/);
      expect(existsSync(path), path).toBe(true);
    }
    expect(existsSync('node_modules/onnxruntime-node/bin/napi-v6/linux/x64')).toBe(true);
  });

  it('never exposes the TTS port', () => {
    const exposed = instructions.filter((l) => l.startsWith('EXPOSE ')).flatMap((l) => l.slice(7).split(/\s+/));
    expect(exposed).not.toContain('8000');
    expect(exposed).toContain('8005');
  });
});
