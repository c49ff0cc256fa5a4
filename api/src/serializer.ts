import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

type ZodRoute = Parameters<typeof zodSerializerCompiler>[0];

/**
 * The routes' response serializer: each zod response schema turned once into JSON Schema
 * (zod's own `z.toJSONSchema`, output side, as the OpenAPI document shows it) and compiled by
 * fast-json-stringify, fastify's default serializer. fastify-type-provider-zod's instead runs
 * zod over every response and then JSON.stringify: in the session benchmark's profile that was
 * 8 % of the API's CPU, against about half of that for the compiled serializer.
 *
 * What the client gets is the same: fields the schema does not declare are dropped (objects are
 * `additionalProperties: false`, the leak guard); a missing required field, or a value that fits
 * no branch of a union (e.g. of a nullable field), is an error (a 500). What is no longer checked
 * (zod refused it): a primitive of the wrong type is coerced (42 where a string is declared is
 * sent as "42", null where a boolean is as false) and enums are not checked. The integration
 * suites compare every response with its handler's data field for field (comparingSerializer in
 * test/harness/api.ts), so a handler that relies on coercion fails them.
 *
 * A schema JSON Schema cannot say (a transform, a date object) keeps zod's serializer.
 */
export const serializerCompiler: FastifySerializerCompiler<unknown> = (route) => {
  const schema = route.schema;
  if (!(schema instanceof z.ZodType)) return zodSerializerCompiler(route as ZodRoute);
  let json: object;
  try {
    json = z.toJSONSchema(schema, { io: 'output', target: 'draft-7', unrepresentable: 'throw' });
  } catch {
    return zodSerializerCompiler(route as ZodRoute);
  }
  const serialize = fastJson(nullableAsTypeList(json) as Parameters<typeof fastJson>[0]);
  return (data) => serialize(data);
};

const PRIMITIVE = new Set(['string', 'number', 'integer', 'boolean']);
const CONTAINER = new Set(['object', 'array']);

/**
 * zod writes a nullable value as `anyOf: [{ type: 'string', … }, { type: 'null' }]`, for which
 * fast-json-stringify runs an ajv validation per value to pick the branch (with ajv-formats for a
 * date-time: 2 % of the session endpoint's CPU; for the session's nullable `snippets` object, once
 * per sandbox). The same is said without a validation: `type: ['string', 'null']` for a
 * primitive (a typeof check), `nullable: true` for an object or an array (fast-json-stringify's
 * null check before the object's own serializer, which keeps dropping undeclared fields).
 */
export function nullableAsTypeList(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(nullableAsTypeList);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = nullableAsTypeList(value);
  const anyOf = out.anyOf;
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return out;
  const nullAt = anyOf.findIndex((b) => b.type === 'null' && Object.keys(b).length === 1);
  const other = anyOf[1 - nullAt] as Record<string, unknown>;
  if (nullAt < 0 || 'anyOf' in other || 'nullable' in other) return out;
  const { anyOf: _anyOf, ...rest } = out;
  if (PRIMITIVE.has(other.type as string)) return { ...rest, ...other, type: [other.type, 'null'] };
  if (CONTAINER.has(other.type as string)) return { ...rest, ...other, nullable: true };
  return out;
}
