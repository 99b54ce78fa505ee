/** Tool definitions and argument checks, without a model: what the grammar is given and what Ajv refuses. */
import { describe, expect, it } from 'vitest';
import { TINY_QWEN_WEATHER_TOOL } from '../../builder/tiny-models/tiny-qwen.js';
import { InvalidInputError } from '../../src/errors.js';
import { grammarSchema, ToolSet } from '../../src/llm/tools.js';

describe('ToolSet', () => {
  it('refuses bad definitions with an error naming the tool and the problem', () => {
    expect(() => ToolSet.compile([{ name: 'get weather' }])).toThrow(/tools\[0\]\.name must be 1 to 64 letters/);
    expect(() => ToolSet.compile([{ name: 'a' }, { name: 'a' }])).toThrow(/tools\[1\]\.name: "a" is defined twice/);
    expect(() => ToolSet.compile([{ name: 'a', parameters: { type: 'string' } }])).toThrow(/tools\[0\]\.parameters must be a JSON Schema of type "object" \(tool "a"\)/);
    expect(() => ToolSet.compile([{ name: 'a', parameters: { type: 'object', properties: { x: { type: 'no-such-type' } } } }])).toThrow(
      /tools\[0\]\.parameters is not a valid JSON Schema \(tool "a"\)/,
    );
    expect(() => ToolSet.compile([{ name: 'a', description: 7 as unknown as string }])).toThrow(InvalidInputError);
  });

  it('checks arguments against the whole schema, ranges and formats included', () => {
    const tools = ToolSet.compile([
      TINY_QWEN_WEATHER_TOOL,
      { name: 'email', parameters: { type: 'object', properties: { to: { type: 'string', format: 'email' } }, required: ['to'] } },
      { name: 'ping' },
    ]);
    expect(tools.problem('get_weather', { city: 'Paris', days: 1 })).toBeNull();
    expect(tools.problem('get_weather', { city: 'Paris', days: 30 })).toBe('/days must be <= 7');
    expect(tools.problem('get_weather', { city: 'Paris' })).toMatch(/must have required property 'days'/);
    expect(tools.problem('get_weather', { city: 'Paris', days: 2, extra: true })).toMatch(/must NOT have additional properties/);
    expect(tools.problem('email', { to: 'not an address' })).toMatch(/\/to must match format "email"/);
    expect(tools.problem('ping', {})).toBeNull();
    expect(tools.problem('ping', { x: 1 })).toBe('"ping" takes no arguments');
    expect(tools.problem('nope', {})).toBe('there is no tool "nope"');
  });

  it('offers all functions for auto and required, one for a named choice, none for "none"', () => {
    const tools = ToolSet.compile([TINY_QWEN_WEATHER_TOOL, { name: 'ping', description: 'Are you there?' }]);
    expect(Object.keys(tools.functions('auto')!)).toEqual(['get_weather', 'ping']);
    expect(Object.keys(tools.functions('required')!)).toEqual(['get_weather', 'ping']);
    expect(tools.functions({ name: 'ping' })).toEqual({ ping: { description: 'Are you there?' } });
    expect(tools.functions('none')).toBeUndefined();
    expect(ToolSet.compile([]).functions('auto')).toBeUndefined();
  });

  it('accepts a schema that names its own dialect, as zod writes them', () => {
    const tools = ToolSet.compile([
      {
        name: 'get_weather',
        parameters: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
      },
    ]);
    expect(tools.problem('get_weather', { city: 'Paris' })).toBeNull();
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
