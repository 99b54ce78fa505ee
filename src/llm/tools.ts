/**
 * The functions a turn may call: the client's definitions (name, description, JSON-schema
 * parameters), checked once when they arrive, and each call's arguments checked against the full
 * schema before anyone sees them.
 *
 * Two checks, because neither covers everything: node-llama-cpp grammar-constrains a call to the
 * schema's shape (types, properties, enums, string lengths, item counts), which is what keeps a
 * model's JSON well-formed; Ajv then checks the rest of JSON Schema (ranges, patterns, formats,
 * combinators) that a grammar cannot express.
 *
 * What a client may send is bounded (the tool list's size, each schema's depth, its patterns' shape)
 * and Ajv's work (compiling, validating) runs off the event loop, within time limits, on the schema
 * thread (schema-checker.ts): one client's tools must not stall every other session's audio.
 */
import type { ChatModelFunctions, GbnfJsonSchema } from 'node-llama-cpp';
import { InvalidInputError } from '../errors.js';
import { SchemaCheckTimeout, schemaChecker, type SchemaChecker } from './schema-checker.js';

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

/** The tool list as JSON, at most (names, descriptions and schemas): about 30 ordinary tools. */
export const MAX_TOOLS_JSON_CHARS = 64_000;
/** A schema's nesting, at most. */
const MAX_SCHEMA_DEPTH = 24;
/** A `pattern` (or `patternProperties` key), at most. */
const MAX_PATTERN_CHARS = 512;
/** Time limits on the schema thread: compiling a whole list, validating one call's arguments. */
const COMPILE_TIMEOUT_MS = 10_000;
const VALIDATE_TIMEOUT_MS = 1_000;

interface CompiledTool {
  definition: ToolDefinition;
  grammar: GbnfJsonSchema | undefined;
  /** The schema Ajv checks, as JSON text (the schema thread's key for its compiled validator); null: no arguments. */
  schema: string | null;
}

export class ToolSet {
  readonly #tools: Map<string, CompiledTool>;
  readonly #checker: SchemaChecker;

  private constructor(tools: Map<string, CompiledTool>, checker: SchemaChecker) {
    this.#tools = tools;
    this.#checker = checker;
  }

  /**
   * Checks every definition; a bad one is an InvalidInputError naming the tool and the problem. The
   * bounds and shapes are checked here (cheap); the schemas compile on the schema thread.
   */
  static async compile(definitions: readonly ToolDefinition[], checker: SchemaChecker = schemaChecker): Promise<ToolSet> {
    const size = JSON.stringify(definitions).length;
    if (size > MAX_TOOLS_JSON_CHARS) throw new InvalidInputError(`tools: the list is ${size} characters as JSON, more than the ${MAX_TOOLS_JSON_CHARS} allowed`);
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
        tools.set(definition.name, { definition, grammar: undefined, schema: null });
        return;
      }
      if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters['type'] !== 'object') {
        throw new InvalidInputError(`${where}.parameters must be a JSON Schema of type "object" (tool "${definition.name}")`);
      }
      const unsafe = schemaProblem(parameters, 0);
      if (unsafe) throw new InvalidInputError(`${where}.parameters (tool "${definition.name}"): ${unsafe}`);
      // Checked in Ajv's draft-07 dialect whatever the schema names (zod, for one, names 2020-12).
      const { $schema: _dialect, ...schema } = parameters;
      tools.set(definition.name, { definition, grammar: grammarSchema(parameters), schema: JSON.stringify(schema) });
    });
    const compiled = [...tools.values()].filter((tool) => tool.schema !== null);
    let errors: (string | null)[];
    try {
      errors = await checker.compile(
        compiled.map((tool) => tool.schema!),
        COMPILE_TIMEOUT_MS,
      );
    } catch (cause) {
      if (cause instanceof SchemaCheckTimeout) throw new InvalidInputError(`tools: the schemas took longer than ${COMPILE_TIMEOUT_MS} ms to compile; send fewer or simpler ones`, { cause });
      throw cause;
    }
    errors.forEach((error, i) => {
      if (error === null) return;
      const name = compiled[i]!.definition.name;
      const index = definitions.findIndex((d) => d.name === name);
      throw new InvalidInputError(`tools[${index}].parameters is not a valid JSON Schema (tool "${name}"): ${error}`);
    });
    return new ToolSet(tools, checker);
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

  /** What is wrong with a call's arguments, or null when they match the tool's schema (checked on the schema thread). */
  async problem(name: string, args: unknown): Promise<string | null> {
    const tool = this.#tools.get(name);
    if (!tool) return `there is no tool "${name}"`;
    if (tool.schema === null) return args === undefined || (isPlainObject(args) && Object.keys(args).length === 0) ? null : `"${name}" takes no arguments`;
    try {
      return await this.#checker.validate(tool.schema, args, VALIDATE_TIMEOUT_MS);
    } catch (error) {
      if (error instanceof SchemaCheckTimeout) return `the arguments could not be checked within ${VALIDATE_TIMEOUT_MS} ms`;
      throw error;
    }
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

/** Why a schema is refused before it is compiled (too deep, an unsafe pattern), or null. */
function schemaProblem(node: unknown, depth: number): string | null {
  if (depth > MAX_SCHEMA_DEPTH) return `nested deeper than ${MAX_SCHEMA_DEPTH} levels`;
  if (Array.isArray(node)) {
    for (const child of node) {
      const problem = schemaProblem(child, depth + 1);
      if (problem) return problem;
    }
    return null;
  }
  if (!isPlainObject(node)) return null;
  const patterns = [...(typeof node['pattern'] === 'string' ? [node['pattern']] : []), ...(isPlainObject(node['patternProperties']) ? Object.keys(node['patternProperties']) : [])];
  for (const pattern of patterns) {
    const problem = patternProblem(pattern);
    if (problem) return `pattern ${JSON.stringify(pattern.slice(0, 80))}: ${problem}`;
  }
  for (const child of Object.values(node)) {
    const problem = schemaProblem(child, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/**
 * Why a regular expression may backtrack without end, or null. JavaScript's engine backtracks, so
 * the shapes that make it exponential are refused: a repeated group that itself repeats or holds
 * alternatives (`(a+)+`, `(a|ab)*`), and backreferences. What is left matches in polynomial time.
 */
export function patternProblem(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN_CHARS) return `longer than ${MAX_PATTERN_CHARS} characters`;
  try {
    new RegExp(pattern, 'u');
  } catch (error) {
    return `not a valid regular expression (${(error as Error).message})`;
  }
  /** Per open group: it holds a quantifier or an alternation. */
  const groups: { risky: boolean }[] = [];
  let lastGroupRisky = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || next === 'k') return 'backreferences are not allowed';
      i++;
      lastGroupRisky = false;
      continue;
    }
    if (c === '[') {
      // A character class: quantifier and group characters inside it are literal.
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
      lastGroupRisky = false;
      continue;
    }
    if (c === '(') {
      groups.push({ risky: false });
      continue;
    }
    if (c === ')') {
      lastGroupRisky = groups.pop()?.risky ?? false;
      continue;
    }
    const brace = c === '{' ? /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i)) : null;
    const most = c === '*' || c === '+' ? Infinity : brace ? (brace[2] === undefined ? Number(brace[1]) : brace[3] === '' ? Infinity : Number(brace[3])) : 0;
    if (most > 1 && lastGroupRisky) return 'a repeated group that repeats or has alternatives inside (it can backtrack without end)';
    if ((most > 1 || c === '|') && groups.length > 0) for (const group of groups) group.risky = true;
    if (brace) i += brace[0].length - 1;
    lastGroupRisky = false;
  }
  return null;
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
