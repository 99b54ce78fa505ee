// The browser client of live sessions: microphone -> 16 kHz PCM16 frames -> WebSocket; 24 kHz PCM16
// from the worker -> scheduled playback; barge-in events pause, resume or flush what is buffered.
// State is kept on window.s2s so tests can read it.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const key of ['api', 'endpoint', 'url', 'token']) if (params.has(key)) $(key).value = params.get(key);
if (!$('api').value) $('api').value = `${location.protocol}//${location.hostname}:8005/v2`;

const state = (window.s2s = { status: 'idle', events: [], transcripts: [], partials: [], responses: [], latencyBars: [], audioChunks: 0, audioSamples: 0, error: null });

let ws = null;
let captureContext = null;
let playContext = null;
let micStream = null;
let nextPlayTime = 0;
const playing = new Set();

function setStatus(status) {
  state.status = status;
  $('status').textContent = status;
}

function log(text, cls) {
  const line = document.createElement('div');
  line.className = cls;
  line.textContent = text;
  $('log').append(line);
}

/**
 * Where one answer's time to first audio went, as a bar: endpoint, then the model time on the
 * critical path (ASR not hidden, LLM first clause, TTS first chunk; for a preemptive answer, the
 * model time still left when the turn closed), then our own overhead.
 */
function latencyBar(m) {
  const total = Math.max(1, m.first_audio_ms);
  const models = Math.max(0, m.first_audio_ms - m.endpoint_ms - m.overhead_ms);
  const parts =
    m.preemptive === true
      ? [['endpoint', m.endpoint_ms], ['models', models], ['overhead', m.overhead_ms]]
      : [['endpoint', m.endpoint_ms], ['asr', m.asr_critical_ms], ['llm', m.llm_first_clause_ms], ['tts', m.tts_ttfb_ms], ['overhead', m.overhead_ms]];
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.title = parts.map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(', ') + ` = ${Math.round(m.first_audio_ms)} ms`;
  for (const [name, ms] of parts) {
    const span = document.createElement('span');
    span.className = name;
    span.style.width = `${(100 * Math.max(0, ms)) / total}%`;
    bar.append(span);
  }
  $('log').append(bar);
  state.latencyBars.push(Object.fromEntries(parts.map(([name, ms]) => [name, Math.round(ms)])));
}

/** Starts a session job through the RunPod API and waits for its {url, token}. */
async function startSessionJob(api, endpoint) {
  const run = await fetch(`${api}/${endpoint}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer local' },
    body: JSON.stringify({ input: { mode: 'session' } }),
  }).then((r) => r.json());
  for (let i = 0; i < 600; i++) {
    const chunk = await fetch(`${api}/${endpoint}/stream/${run.id}`, { headers: { authorization: 'Bearer local' } }).then((r) => r.json());
    const invitation = (chunk.stream ?? []).map((c) => c.output).find((o) => o?.type === 'session');
    if (invitation) return invitation;
    if (['FAILED', 'CANCELLED', 'TIMED_OUT'].includes(chunk.status)) throw new Error(chunk.error ?? `session job ${chunk.status}`);
  }
  throw new Error('the session job did not start');
}

function play(bytes) {
  const pcm = new Int16Array(bytes);
  const buffer = playContext.createBuffer(1, pcm.length, 24000);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
  const source = playContext.createBufferSource();
  source.buffer = buffer;
  source.connect(playContext.destination);
  nextPlayTime = Math.max(nextPlayTime, playContext.currentTime + 0.02);
  source.start(nextPlayTime);
  nextPlayTime += buffer.duration;
  playing.add(source);
  source.onended = () => playing.delete(source);
  state.audioChunks++;
  state.audioSamples += pcm.length;
}

function flushPlayback() {
  for (const source of playing) source.stop();
  playing.clear();
  nextPlayTime = 0;
}

function onEvent(event) {
  state.events.push(event);
  switch (event.type) {
    case 'ready':
      setStatus('listening');
      break;
    case 'partial_transcript':
      state.partials.push(event.text);
      $('partial').textContent = `… ${event.text}`;
      break;
    case 'transcript':
      $('partial').textContent = '';
      state.transcripts.push(event.text);
      if (event.text) log(`you: ${event.text}`, 'user');
      state.responses[event.turn] = '';
      break;
    case 'text':
      state.responses[event.turn] = (state.responses[event.turn] ?? '') + event.delta;
      break;
    case 'metrics':
      log(`assistant: ${state.responses[event.turn] ?? ''}  (first audio ${Math.round(event.first_audio_ms)} ms${event.preemptive === true ? ', started during the endpoint wait' : ''})`, 'assistant');
      if (event.first_audio_ms > 0) latencyBar(event);
      break;
    case 'paused':
      void playContext.suspend();
      break;
    case 'resumed':
      void playContext.resume();
      break;
    case 'interrupted':
      flushPlayback();
      void playContext.resume();
      break;
    case 'error':
      log(`error: ${event.message}`, 'note');
      break;
    case 'session_end':
      setStatus(`ended (${event.reason})`);
      break;
  }
}

async function start() {
  $('start').disabled = true;
  try {
    setStatus('starting');
    let url = $('url').value.trim();
    let token = $('token').value.trim();
    playContext = new AudioContext({ sampleRate: 24000 });
    captureContext = new AudioContext({ sampleRate: 16000 });
    await captureContext.audioWorklet.addModule('./capture-worklet.js');
    // The microphone first: a session job holds a worker until its client connects, and the
    // permission prompt may take the user longer than the job's connect timeout.
    micStream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    if (!url) ({ url, token } = await startSessionJob($('api').value.trim(), $('endpoint').value.trim()));
    ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', token }));
      const node = new AudioWorkletNode(captureContext, 'capture-processor');
      node.port.onmessage = (message) => ws.readyState === WebSocket.OPEN && ws.send(message.data);
      captureContext.createMediaStreamSource(micStream).connect(node);
    };
    ws.onmessage = (message) => (typeof message.data === 'string' ? onEvent(JSON.parse(message.data)) : play(message.data));
    ws.onclose = (close) => {
      if (!state.status.startsWith('ended')) setStatus(`closed (${close.code})`);
      stop();
    };
    $('stop').disabled = false;
  } catch (error) {
    state.error = String(error);
    setStatus(`failed: ${error.message ?? error}`);
    stop(); // releases the microphone taken above
  }
}

function stop() {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'end' }));
  micStream?.getTracks().forEach((track) => track.stop());
  void captureContext?.close();
  $('start').disabled = false;
  $('stop').disabled = true;
}

$('start').onclick = () => void start();
$('stop').onclick = () => stop();
if (params.get('autostart') === '1') void start();
