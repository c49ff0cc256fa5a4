import { consoleRequest } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import {
  ConsoleError,
  explainConsole,
  fitJson,
  jsonCell,
  prepareStatement,
  utf16Position,
} from './console.ts';

describe('utf16Position', () => {
  it('is the same position for text without astral characters', () => {
    expect(utf16Position('SELECT x FROM t', 8)).toBe(8);
  });
  it('moves past surrogate pairs, which PostgreSQL counts as one character', () => {
    // '😀' is one code point, two UTF-16 units: character 3 of "a😀b" is "b", at UTF-16 position 4.
    expect(utf16Position('a😀b', 3)).toBe(4);
  });
  it('points just past the end for a position past it (an error at end of input)', () => {
    expect(utf16Position('abc', 10)).toBe(4);
  });
});

describe('prepareStatement', () => {
  it('trims the statement and counts the leading blanks the page still shows', () => {
    expect(prepareStatement('\n  SELECT 1;  ', 100)).toEqual({ statement: 'SELECT 1', lead: 3 });
  });
  it('says an empty statement is empty, comments included', () => {
    expect(() => prepareStatement(' -- nothing\n ; ', 100)).toThrow(/Nothing to run/);
  });
  it('refuses one over the length limit', () => {
    expect(() => prepareStatement('SELECT 1', 3)).toThrow(/limit is 3/);
  });
});

describe('jsonCell', () => {
  it('writes bytea as hex text and dates as ISO strings, and leaves the rest', () => {
    expect(jsonCell(Buffer.from([1, 255]))).toBe('\\x01ff');
    expect(jsonCell(new Date('2026-01-02T03:04:05Z'))).toBe('2026-01-02T03:04:05.000Z');
    expect(jsonCell({ a: 1 })).toEqual({ a: 1 });
    expect(jsonCell(null)).toBeNull();
  });
});

describe('explainConsole', () => {
  const statement = 'SELECT nope FROM t';
  it('maps a position through the cursor prefix and the leading blanks', () => {
    const e = explainConsole(
      { code: '42703', message: 'column "nope" does not exist', position: '18' },
      5000,
      10,
      statement,
      2,
    );
    expect(e).toBeInstanceOf(ConsoleError);
    expect(e).toMatchObject({ reason: 'SqlError', position: 10 });
  });
  it('says a timeout, a permission and several statements in words of their own', () => {
    expect(explainConsole({ code: '57014', message: 'canceling' }, 5000, 0, statement, 0)).toMatchObject({
      reason: 'Timeout',
      message: expect.stringMatching(/after 5 s/),
    });
    expect(
      explainConsole(
        { code: '42501', message: 'permission denied for table customers' },
        5000,
        0,
        statement,
        0,
      ),
    ).toMatchObject({
      reason: 'Forbidden',
    });
    expect(
      explainConsole(
        { code: '42601', message: 'cannot insert multiple commands into a prepared statement' },
        5000,
        0,
        statement,
        0,
      ),
    ).toMatchObject({ reason: 'NotAQuery' });
  });
  it('takes a lost server or connection for unavailable, not for the statement', () => {
    expect(explainConsole({ code: '57P01', message: 'terminating' }, 5000, 0, statement, 0).reason).toBe(
      'Unavailable',
    );
    expect(explainConsole(new Error('socket hang up'), 5000, 0, statement, 0).reason).toBe('Unavailable');
  });
  it('gives no position when PostgreSQL gave none', () => {
    expect(
      explainConsole({ code: '22012', message: 'division by zero' }, 5000, 0, statement, 0).position,
    ).toBeUndefined();
  });
});

describe('consoleRequest', () => {
  it('takes a query, or a pipeline with its collection', () => {
    expect(consoleRequest.safeParse({ sandbox: 'w', query: 'SELECT 1' }).success).toBe(true);
    expect(consoleRequest.safeParse({ sandbox: 'e', pipeline: '[]', collection: 'c' }).success).toBe(true);
  });
  it('names the field at fault: neither or both, a pipeline without collection, an unknown key', () => {
    const paths = (body: unknown) =>
      consoleRequest.safeParse(body).error?.issues.map((i) => i.path.join('.') || i.message);
    expect(paths({ sandbox: 'w' })).toEqual(['query']);
    expect(paths({ sandbox: 'w', query: 'x', pipeline: '[]', collection: 'c' })).toEqual(['query']);
    expect(paths({ sandbox: 'e', pipeline: '[]' })).toEqual(['collection']);
    expect(
      consoleRequest.safeParse({ sandbox: 'e', query: 'x', database: 'other' }).error?.issues[0]?.message,
    ).toMatch(/database/);
  });
});

describe('fitJson', () => {
  it('keeps every row that fits and says when some were cut', () => {
    const row = ['x'.repeat(100)];
    expect(fitJson([row, row], 1000)).toEqual({ rows: [row, row], cut: false });
    const { rows, cut } = fitJson(
      Array.from({ length: 50 }, () => row),
      1000,
    );
    expect(cut).toBe(true);
    expect(rows.length).toBe(9); // 2 + 9 × (106 + 1) = 965 ≤ 1000 < 1072
  });

  it('counts the JSON, not the text: control characters grow six-fold', () => {
    const control = ['\u0001'.repeat(200)]; // 200 characters, 1 206 bytes of JSON
    expect(() => fitJson([control], 1000)).toThrow(/first row alone is more than 0 MiB as JSON/);
    expect(fitJson([['a'.repeat(200)]], 1000).cut).toBe(false);
  });

  it('refuses, in both languages, a first row over the cap (an empty table would not say why)', () => {
    const err = (() => {
      try {
        fitJson([['\u0001'.repeat(400_000)]]);
      } catch (e) {
        return e as ConsoleError;
      }
      throw new Error('not refused');
    })();
    expect(err).toMatchObject({ reason: 'TooLarge' });
    expect(err.message).toMatch(/more than 2 MiB as JSON/);
    expect(err.fr).toMatch(/dépasse 2 Mio en JSON/);
  });
});
