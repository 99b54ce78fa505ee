/** The Realtime session config: where it starts, a session.update merged into it as a whole or refused as a whole, its JSON. */
import { describe, expect, it } from 'vitest';
import { ToolSet } from '../../src/llm/tools.js';
import { initialConfig, mergeUpdate, sessionJson, type MergeContext } from '../../src/session/realtime/realtime-config.js';

const base = { activationThreshold: 0.5, preRollMs: 200, endpointMs: 400, minEndpointMs: 200, maxEndpointMs: 900, turnThreshold: 0.5, turnIncompleteMs: 1500 };
const context: MergeContext = { base, voices: ['en-Carter_man', 'en-Emma_woman'], defaultVoice: 'en-Carter_man', tools: undefined };

describe('Realtime session config', () => {
  it('starts with PCM16 at 24 kHz and server_vad showing the endpointer\'s own numbers', () => {
    const config = initialConfig('Be brief.', 'en-Emma_woman', base);
    expect(sessionJson(config, 'sess_1', 'gpt-realtime')).toMatchObject({
      id: 'sess_1',
      model: 'gpt-realtime',
      instructions: 'Be brief.',
      audio: {
        input: { format: { type: 'audio/pcm', rate: 24_000 }, turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 200, silence_duration_ms: 400 } },
        output: { voice: 'en-Emma_woman' },
      },
    });
  });

  it('merges what an update carries and keeps the rest; a partial server_vad is filled from the current one', () => {
    const config = initialConfig('Be brief.', 'alloy', base);
    const merged = mergeUpdate(config, { instructions: 'Speak French.', audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad', threshold: 0.7 } } } }, context);
    if ('refused' in merged) throw new Error(merged.refused.message);
    expect(merged.config).toMatchObject({ instructions: 'Speak French.', inputFormat: { type: 'audio/pcmu' }, outputFormat: { type: 'audio/pcm' }, voice: 'alloy' });
    expect(merged.config.turnDetection).toMatchObject({ threshold: 0.7, prefix_padding_ms: 200, silence_duration_ms: 400, interrupt_response: true });
    expect(merged.toolChoice).toBe('auto');
    expect(config.instructions).toBe('Be brief.');
  });

  it('an unknown voice or a tool choice naming no tool refuses the whole update, naming the field', async () => {
    const config = initialConfig('Be brief.', 'alloy', base);
    expect(mergeUpdate(config, { instructions: 'x', audio: { output: { voice: 'nobody' } } }, context)).toEqual({
      refused: { param: 'session.audio.output.voice', message: expect.stringContaining('unknown voice "nobody"') as unknown as string },
    });
    const tools = await ToolSet.compile([{ name: 'get_time' }]);
    const refused = mergeUpdate(config, { tool_choice: { type: 'function', name: 'get_weather' } }, { ...context, tools });
    expect(refused).toMatchObject({ refused: { param: 'session.tool_choice' } });
  });
});
