/** Tool definitions and argument checks, without a model: what the grammar is given and what Ajv refuses. */
import { describe, expect, it } from 'vitest';
import { TINY_QWEN_WEATHER_TOOL } from '../../builder/tiny-models/tiny-qwen.js';
import { InvalidInputError } from '../../src/errors.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SchemaChecker, SchemaCheckTimeout } from '../../src/llm/schema-checker.js';
import { grammarSchema, patternProblem, ToolSet } from '../../src/llm/tools.js';

describe('ToolSet', () => {
  it('refuses bad definitions with an error naming the tool and the problem', async () => {
    await expect(ToolSet.compile([{ name: 'get weather' }])).rejects.toThrow(/tools\[0\]\.name must be 1 to 64 letters/);
    await expect(ToolSet.compile([{ name: 'a' }, { name: 'a' }])).rejects.toThrow(/tools\[1\]\.name: "a" is defined twice/);
    await expect(ToolSet.compile([{ name: 'a', parameters: { type: 'string' } }])).rejects.toThrow(/tools\[0\]\.parameters must be a JSON Schema of type "object" \(tool "a"\)/);
    await expect(ToolSet.compile([{ name: 'a', parameters: { type: 'object', properties: { x: { type: 'no-such-type' } } } }])).rejects.toThrow(
      /tools\[0\]\.parameters is not a valid JSON Schema \(tool "a"\)/,
    );
    await expect(ToolSet.compile([{ name: 'a', description: 7 as unknown as string }])).rejects.toThrow(InvalidInputError);
  });

  it('refuses what could stall the worker: a list too large, a schema too deep, patterns that can backtrack without end', async () => {
    const big = Array.from({ length: 40 }, (_, i) => ({ name: `tool_${i}`, description: 'd'.repeat(2_000) }));
    await expect(ToolSet.compile(big)).rejects.toThrow(/tools: the list is \d+ characters as JSON, more than the 64000 allowed/);
    let deep: Record<string, unknown> = { type: 'string' };
    for (let n = 0; n < 30; n++) deep = { type: 'object', properties: { x: deep } };
    await expect(ToolSet.compile([{ name: 'deep', parameters: deep }])).rejects.toThrow(/nested deeper than 24 levels/);
    for (const pattern of ['^(a+)+$', '^(a|aa)*$', '^([a-z]+\\.)*x$', '(\\w+\\s?){2,}$', '^(a)\\1$', 'x'.repeat(600)]) {
      const tool = { name: 'p', parameters: { type: 'object', properties: { s: { type: 'string', pattern } } } };
      await expect(ToolSet.compile([tool]), pattern).rejects.toThrow(/tools\[0\]\.parameters \(tool "p"\): pattern/);
      await expect(ToolSet.compile([{ name: 'p', parameters: { type: 'object', patternProperties: { [pattern]: {} } } }]), pattern).rejects.toThrow(InvalidInputError);
    }
    for (const pattern of ['^[a-z]+$', '^\\d{3}-\\d{4}$', '^(foo|bar)$', '^(ab)+$', '^[(a+)+]*$', '^(?:\\+?\\d{1,3})?\\d{6,12}$']) {
      expect(patternProblem(pattern), pattern).toBeNull();
    }
  });

  it('checks arguments off the event loop: a runaway check is stopped at its time limit and the next one works', async () => {
    const checker = new SchemaChecker();
    try {
      // Only a checker given one directly can hold such a pattern (ToolSet.compile refuses it).
      const schema = JSON.stringify({ type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } });
      expect(await checker.compile([schema], 5_000)).toEqual([null]);
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      await expect(checker.validate(schema, { s: 'a'.repeat(40) + '!' }, 300)).rejects.toThrow(SchemaCheckTimeout);
      loop.disable();
      // The loop went on meanwhile (the check ran on its own thread).
      expect(loop.max / 1e6).toBeLessThan(300);
      expect(await checker.validate(schema, { s: 'aaa' }, 5_000)).toBeNull();
    } finally {
      await checker.close();
    }
  });

  it('checks arguments against the whole schema, ranges and formats included', async () => {
    const tools = await ToolSet.compile([
      TINY_QWEN_WEATHER_TOOL,
      { name: 'email', parameters: { type: 'object', properties: { to: { type: 'string', format: 'email' } }, required: ['to'] } },
      { name: 'ping' },
    ]);
    expect(await tools.problem('get_weather', { city: 'Paris', days: 1 })).toBeNull();
    expect(await tools.problem('get_weather', { city: 'Paris', days: 30 })).toBe('/days must be <= 7');
    expect(await tools.problem('get_weather', { city: 'Paris' })).toMatch(/must have required property 'days'/);
    expect(await tools.problem('get_weather', { city: 'Paris', days: 2, extra: true })).toMatch(/must NOT have additional properties/);
    expect(await tools.problem('email', { to: 'not an address' })).toMatch(/\/to must match format "email"/);
    expect(await tools.problem('ping', {})).toBeNull();
    expect(await tools.problem('ping', { x: 1 })).toBe('"ping" takes no arguments');
    expect(await tools.problem('nope', {})).toBe('there is no tool "nope"');
  });

  it('offers all functions for auto and required, one for a named choice, none for "none"', async () => {
    const tools = await ToolSet.compile([TINY_QWEN_WEATHER_TOOL, { name: 'ping', description: 'Are you there?' }]);
    expect(Object.keys(tools.functions('auto')!)).toEqual(['get_weather', 'ping']);
    expect(Object.keys(tools.functions('required')!)).toEqual(['get_weather', 'ping']);
    expect(tools.functions({ name: 'ping' })).toEqual({ ping: { description: 'Are you there?' } });
    expect(tools.functions('none')).toBeUndefined();
    expect((await ToolSet.compile([])).functions('auto')).toBeUndefined();
  });

  it('accepts a schema that names its own dialect, as zod writes them', async () => {
    const tools = await ToolSet.compile([
      {
        name: 'get_weather',
        parameters: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
      },
    ]);
    expect(await tools.problem('get_weather', { city: 'Paris' })).toBeNull();
  });
});

describe('grammarSchema', () => {
  it('keeps what the grammar understands and what documents the tool', () => {
    expect(grammarSchema(TINY_QWEN_WEATHER_TOOL.parameters)).toEqual(TINY_QWEN_WEATHER_TOOL.parameters);
  });

  it('turns anyOf into the grammar oneOf, definitions into $defs, and a format it cannot write into a plain string', () => {
    expect(grammarSchema({ anyOf: [{ type: 'string' }, { type: 'null' }] })).toEqual({ oneOf: [{ type: 'string' }, { type: 'null' }] });
    expect(grammarSchema({ type: 'object', properties: { a: { $ref: '#/definitions/A' } }, definitions: { A: { type: 'integer' } } })).toEqual({
      type: 'object',
      properties: { a: { $ref: '#/$defs/A' } },
      $defs: { A: { type: 'integer' } },
    });
    expect(grammarSchema({ type: 'string', format: 'email' })).toEqual({ type: 'string' });
    expect(grammarSchema({ type: 'string', format: 'date' })).toEqual({ type: 'string', format: 'date' });
  });

  it('allows any JSON where the schema says nothing the grammar can use (the grammar would otherwise allow only null)', () => {
    const any = grammarSchema({});
    expect(any).toHaveProperty('oneOf');
    expect(grammarSchema({ description: 'anything' })).toEqual(any);
    expect(grammarSchema({ type: 'object' })).toEqual({ type: 'object', additionalProperties: true });
    expect(grammarSchema({ type: ['string', 'object'] })).toEqual({ oneOf: [{ type: 'string' }, { type: 'object', additionalProperties: true }] });
  });
});
