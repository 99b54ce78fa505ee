/**
 * The functions a turn may call: the client's definitions (name, description, JSON-schema
 * parameters), checked once when they arrive, and each call's arguments checked against the full
 * schema before anyone sees them.
 *
 * Two checks, because neither covers everything: node-llama-cpp grammar-constrains a call to the
 * schema's shape (types, properties, enums, string lengths, item counts), which is what keeps a
 * model's JSON well-formed; Ajv then checks the rest of JSON Schema (ranges, patterns, formats,
 * combinators) that a grammar cannot express.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ChatModelFunctions, GbnfJsonSchema } from 'node-llama-cpp';
import { InvalidInputError } from '../errors.js';

export type JsonSchema = { readonly [keyword: string]: unknown };

export interface ToolDefinition {
  name: string;
  description?: string;
  /** A JSON Schema for the arguments object; absent for a function without arguments. */
  parameters?: JsonSchema;
}

/** As in the OpenAI APIs: let the model decide, offer nothing, make it call one, or make it call this one. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** The names OpenAI accepts for functions (node-llama-cpp needs at least: no whitespace). */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** String formats the grammar can produce itself; others are left to Ajv. */
const GRAMMAR_FORMATS = new Set(['date', 'time', 'date-time']);
/** Any JSON value, in the grammar's terms (a schema without `type` would allow only null there). */
const ANY_JSON: GbnfJsonSchema = {
  oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }],
};

// ajv-formats is CommonJS with a default export; under NodeNext its default import is the module.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

interface CompiledTool {
  definition: ToolDefinition;
  grammar: GbnfJsonSchema | undefined;
  validate: ValidateFunction | null;
}

export class ToolSet {
  readonly #tools: Map<string, CompiledTool>;

  private constructor(tools: Map<string, CompiledTool>) {
    this.#tools = tools;
  }

  /** Checks every definition; a bad one is an InvalidInputError naming the tool and the problem. */
  static compile(definitions: readonly ToolDefinition[]): ToolSet {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const tools = new Map<string, CompiledTool>();
    definitions.forEach((definition, index) => {
      const where = `tools[${index}]`;
      if (typeof definition.name !== 'string' || !TOOL_NAME.test(definition.name)) {
        throw new InvalidInputError(`${where}.name must be 1 to 64 letters, digits, _ or - (got ${JSON.stringify(definition.name)})`);
      }
      if (tools.has(definition.name)) throw new InvalidInputError(`${where}.name: "${definition.name}" is defined twice`);
      if (definition.description !== undefined && typeof definition.description !== 'string') {
        throw new InvalidInputError(`${where}.description must be a string`);
      }
      const { parameters } = definition;
      if (parameters === undefined || parameters === null) {
        tools.set(definition.name, { definition, grammar: undefined, validate: null });
        return;
      }
      if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters['type'] !== 'object') {
        throw new InvalidInputError(`${where}.parameters must be a JSON Schema of type "object" (tool "${definition.name}")`);
      }
      let validate: ValidateFunction;
      try {
        // Checked in Ajv's draft-07 dialect whatever the schema names (zod, for one, names 2020-12).
        const { $schema: _dialect, ...schema } = parameters;
        validate = ajv.compile(schema);
      } catch (cause) {
        throw new InvalidInputError(`${where}.parameters is not a valid JSON Schema (tool "${definition.name}"): ${(cause as Error).message}`, { cause });
      }
      tools.set(definition.name, { definition, grammar: grammarSchema(parameters), validate });
    });
    return new ToolSet(tools);
  }

  /**
   * The functions to offer node-llama-cpp for a choice: none for "none", only the named one for a
   * named choice (so the name grammar allows nothing else), all of them otherwise.
   */
  functions(choice: ToolChoice = 'auto'): ChatModelFunctions | undefined {
    if (choice === 'none' || this.#tools.size === 0) return undefined;
    const offered = typeof choice === 'object' ? [this.#get(choice.name)] : [...this.#tools.values()];
    return Object.fromEntries(
      offered.map(({ definition, grammar }) => [definition.name, { ...(definition.description ? { description: definition.description } : {}), ...(grammar ? { params: grammar } : {}) }]),
    );
  }

  description(name: string): string | undefined {
    return this.#tools.get(name)?.definition.description;
  }

  /** What is wrong with a call's arguments, or null when they match the tool's schema. */
  problem(name: string, args: unknown): string | null {
    const tool = this.#tools.get(name);
    if (!tool) return `there is no tool "${name}"`;
    if (!tool.validate) return args === undefined || (isPlainObject(args) && Object.keys(args).length === 0) ? null : `"${name}" takes no arguments`;
    if (tool.validate(args)) return null;
    return (tool.validate.errors ?? []).map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`).join('; ');
  }

  #get(name: string): CompiledTool {
    const tool = this.#tools.get(name);
    if (!tool) throw new InvalidInputError(`tool_choice names "${name}", which is not among the tools (${[...this.#tools.keys()].join(', ') || 'none'})`);
    return tool;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The schema in the form node-llama-cpp's grammar understands, allowing no more than the original
 * does as far as the grammar can tell (Ajv has the last word). The grammar makes every listed
 * property required, in order; that still yields valid arguments. Keywords the grammar ignores
 * (minimum, pattern, required, ...) stay, because the same schema documents the tool to the model.
 */
export function grammarSchema(schema: unknown): GbnfJsonSchema {
  if (!isPlainObject(schema)) return ANY_JSON;
  const out: Record<string, unknown> = { ...schema };
  delete out['anyOf'];
  delete out['allOf'];
  delete out['definitions'];
  if (Array.isArray(schema['anyOf'])) out['oneOf'] = schema['anyOf'];
  if (Array.isArray(schema['allOf']) && schema['allOf'].length === 1) return grammarSchema({ ...out, ...(schema['allOf'][0] as object) });
  if (Array.isArray(out['oneOf'])) out['oneOf'] = out['oneOf'].map(grammarSchema);
  const defs = (schema['$defs'] ?? schema['definitions']) as unknown;
  if (isPlainObject(defs)) out['$defs'] = Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, grammarSchema(v)]));
  if (typeof schema['$ref'] === 'string') {
    out['$ref'] = schema['$ref'].replace(/^#\/definitions\//, '#/$defs/');
    return out as GbnfJsonSchema;
  }
  if (out['oneOf'] || 'const' in schema || Array.isArray(schema['enum'])) return out as GbnfJsonSchema;
  const type = schema['type'];
  if (type === 'object') {
    if (isPlainObject(schema['properties'])) out['properties'] = Object.fromEntries(Object.entries(schema['properties']).map(([k, v]) => [k, grammarSchema(v)]));
    const extra = schema['additionalProperties'];
    // JSON Schema allows extra properties unless told otherwise; the grammar does the opposite.
    if (!isPlainObject(schema['properties']) && extra === undefined) out['additionalProperties'] = true;
    else if (isPlainObject(extra)) out['additionalProperties'] = grammarSchema(extra);
    return out as GbnfJsonSchema;
  }
  if (type === 'array') {
    if (schema['items'] !== undefined) out['items'] = grammarSchema(schema['items']);
    if (Array.isArray(schema['prefixItems'])) out['prefixItems'] = schema['prefixItems'].map(grammarSchema);
    return out as GbnfJsonSchema;
  }
  if (type === 'string') {
    if (typeof schema['format'] === 'string' && !GRAMMAR_FORMATS.has(schema['format'])) delete out['format'];
    return out as GbnfJsonSchema;
  }
  const simple = ['string', 'number', 'integer', 'boolean', 'null'];
  if (typeof type === 'string' && simple.includes(type)) return out as GbnfJsonSchema;
  if (Array.isArray(type) && type.length > 0 && type.every((t) => simple.includes(t as string))) return out as GbnfJsonSchema;
  if (Array.isArray(type)) return { oneOf: type.map((t) => grammarSchema({ ...out, type: t })) };
  return ANY_JSON;
}
