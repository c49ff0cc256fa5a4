import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { nullableAsTypeList, serializerCompiler } from './serializer.ts';
import { SessionView } from './views.ts';

const compile = (schema: unknown) =>
  serializerCompiler({ schema, method: 'GET', url: '/x', httpStatus: '200' } as never);

const session = {
  assessment: 'alice',
  candidate: 'Alice',
  title: 'Data engineer',
  description: null,
  phase: 'Ready',
  startPolicy: 'Immediate',
  started: true,
  expiresAt: '2026-01-01T00:00:00Z',
  timeLeftSeconds: 60,
  tasks: [{ id: 't1', sandbox: 'pg', points: 10, title: 'Revenue', answer: 'sql' }],
  sandboxes: [
    {
      name: 'pg',
      kind: 'postgres',
      ready: true,
      host: 'pg.example.com',
      port: 5432,
      tls: 'private',
      password: 'p"w\\d\u2028',
      snippets: { psql: 'psql "host=pg.example.com"' },
    },
  ],
};

describe('serializerCompiler', () => {
  it('gives what JSON.stringify gives for a body that fits its schema', () => {
    expect(JSON.parse(compile(SessionView)(session))).toEqual(session);
  });

  it('drops the fields the schema does not declare, at every depth (the leak guard)', () => {
    const leaky = {
      ...session,
      token: 'secret-1',
      sandboxes: [{ ...session.sandboxes[0], credentialsSecret: 'secret-2' }],
    };
    const out = compile(SessionView)(leaky);
    expect(out).not.toContain('secret-1');
    expect(out).not.toContain('secret-2');
    expect(JSON.parse(out)).toEqual(session);
  });

  it('refuses a body without a required field, or with a value no branch of a union fits', () => {
    const { title: _title, ...untitled } = session;
    expect(() => compile(SessionView)(untitled)).toThrow('"title" is required!');
    expect(() => compile(SessionView)({ ...session, timeLeftSeconds: 'soon' })).toThrow(/timeLeftSeconds/);
  });

  it('coerces, not refuses, a primitive of the wrong type (what zod refused; the integration suites compare)', () => {
    const out = JSON.parse(compile(SessionView)({ ...session, title: 42, started: null }));
    expect([out.title, out.started]).toEqual(['42', false]);
  });

  it('keeps zod for what JSON Schema cannot say (a date object) and validates with it', () => {
    const serialize = compile(z.object({ at: z.date() }));
    expect(serialize({ at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
    expect(() => serialize({ at: 'yesterday' })).toThrow(/Response doesn't match the schema/);
  });

  it('writes a nullable primitive as a type list, and leaves other unions as they are', () => {
    const date = { type: 'string', format: 'date-time' };
    expect(
      nullableAsTypeList({ properties: { at: { description: 'd', anyOf: [date, { type: 'null' }] } } }),
    ).toEqual({
      properties: { at: { description: 'd', type: ['string', 'null'], format: 'date-time' } },
    });
    const objectOrUnion = { anyOf: [{ anyOf: [{ type: 'object' }, { type: 'array' }] }, { type: 'null' }] };
    expect(nullableAsTypeList(objectOrUnion)).toEqual(objectOrUnion);
    const twoStrings = { anyOf: [{ type: 'string' }, { type: 'integer' }] };
    expect(nullableAsTypeList(twoStrings)).toEqual(twoStrings);
    const serialize = compile(SessionView);
    for (const expiresAt of [null, '2026-01-01T00:00:00Z'])
      expect(JSON.parse(serialize({ ...session, expiresAt, timeLeftSeconds: null }))).toEqual({
        ...session,
        expiresAt,
        timeLeftSeconds: null,
      });
  });

  it('writes a nullable object or array as nullable: null passes, the object keeps its leak guard', () => {
    const obj = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
    expect(nullableAsTypeList({ anyOf: [obj, { type: 'null' }] })).toEqual({ ...obj, nullable: true });
    const list = { type: 'array', items: { type: 'string' } };
    expect(nullableAsTypeList({ anyOf: [{ type: 'null' }, list] })).toEqual({ ...list, nullable: true });
    const serialize = compile(SessionView);
    const [sandbox] = session.sandboxes;
    for (const snippets of [null, { psql: 'psql', mongosh: 'mongosh' }]) {
      const body = { ...session, sandboxes: [{ ...sandbox, snippets }] };
      expect(JSON.parse(serialize(body))).toEqual(body);
    }
    // The record's values are still strings only; the sandbox's undeclared fields are still dropped.
    const leaky = { ...session, sandboxes: [{ ...sandbox, secret: 's', snippets: { psql: 'p' } }] };
    expect(serialize(leaky)).not.toContain('"secret"');
  });

  it("leaves the session's schema no union for fast-json-stringify to pick by validating each value", () => {
    const json = z.toJSONSchema(SessionView, { io: 'output', target: 'draft-7' });
    expect(JSON.stringify(json)).toContain('anyOf');
    expect(JSON.stringify(nullableAsTypeList(json))).not.toContain('anyOf');
  });
});
