import type { CheckSpec } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { type CheckRunner, runChecks, SourceError } from './checks.ts';
import type { ResultSet } from './compare.ts';
import { AnswerError } from './sql.ts';

const rs = (rows: unknown[][], columns = rows[0]?.map((_, i) => `c${i}`) ?? ['c0']): ResultSet => ({
  columns,
  rows,
});

/** A fake runner: each query's result (or error) by its text. */
function runner(work: Record<string, ResultSet | Error>, source: Record<string, ResultSet | Error> = {}) {
  const calls: string[] = [];
  const answer = (table: Record<string, ResultSet | Error>, sql: string) => {
    calls.push(sql);
    const r = table[sql];
    if (!r) throw new Error(`unexpected query ${sql}`);
    if (r instanceof Error) throw r;
    return Promise.resolve(r);
  };
  const r: CheckRunner = {
    work: (check) => answer(work, check.sql ?? check.mongo!.pipeline),
    source: (sql) => answer(source, sql),
  };
  return { runner: r, calls };
}

const check = (name: string, sql: string, expect: CheckSpec['expect'], hint = `fix ${name}`): CheckSpec => ({
  name,
  sql,
  expect,
  hint,
});

describe('runChecks', () => {
  it('passes when every check passes, and says so', async () => {
    const { runner: r } = runner(
      { dupes: rs([]), exists: rs([[1]]), count: rs([[42, true]]), fp: rs([[2040, 'abc']]) },
      { 'source fp': rs([['2040', 'abc']]) },
    );
    const res = await runChecks(
      [
        check('no-dupes', 'dupes', { noRows: true }),
        check('has-rows', 'exists', { someRows: true }),
        check('count', 'count', { rows: [['42', 'true']] }),
        check('complete', 'fp', { sameAsSource: 'source fp' }),
      ],
      r,
    );
    expect(res.pass).toBe(true);
    expect(res.hint).toBe('All 4 checks pass.');
    expect(res.hintFr).toBe('Les 4 vérifications réussissent.');
    expect(res.checks!.map((c) => c.pass)).toEqual([true, true, true, true]);
    expect(res).toMatchObject({ expectedRows: 4, actualRows: 4 });
  });

  it('names each failing check with its hint, never a value; staff see the values', async () => {
    const { runner: r } = runner(
      { dupes: rs([[17, 2]]), fp: rs([[2039, 'zzz']]), ok: rs([]) },
      { 'source fp': rs([[2040, 'abc']]) },
    );
    const res = await runChecks(
      [
        check('no-duplicate-transactions', 'dupes', { noRows: true }, 'Some transactions are loaded twice.'),
        check('ok', 'ok', { noRows: true }),
        check('customers-complete', 'fp', { sameAsSource: 'source fp' }, 'Some customers are missing.'),
      ],
      r,
    );
    expect(res.pass).toBe(false);
    expect(res.hint).toBe(
      '2 of 3 checks fail: no-duplicate-transactions, customers-complete. no-duplicate-transactions: Some transactions are loaded twice. customers-complete: Some customers are missing.',
    );
    // In French, the platform's words are French; the authors' hints stay as they wrote them.
    expect(res.hintFr).toBe(
      '2 vérifications sur 3 en échec : no-duplicate-transactions, customers-complete. no-duplicate-transactions : Some transactions are loaded twice. customers-complete : Some customers are missing.',
    );
    for (const leaked of ['2040', 'abc', '17']) expect(res.hint).not.toContain(leaked);
    expect(res.explanation).toMatch(
      /FAIL no-duplicate-transactions: Expected no rows, got 1, e\.g\. \(17, 2\)/,
    );
    expect(res.explanation).toMatch(/PASS ok/);
    expect(res.explanation).toMatch(/FAIL customers-complete: .*2040/);
    expect(res).toMatchObject({ expectedRows: 3, actualRows: 1 });
  });

  it('fails someRows on an empty result and rows on a different one', async () => {
    const { runner: r } = runner({ none: rs([]), one: rs([[1, null]]) });
    const res = await runChecks(
      [
        check('some', 'none', { someRows: true }),
        check('literal', 'one', { rows: [['1', 'x']] }),
        check('literal-null', 'one', { rows: [['1', 'NULL']] }),
      ],
      r,
    );
    expect(res.checks!.map((c) => [c.name, c.pass])).toEqual([
      ['some', false],
      ['literal', false],
      ['literal-null', true],
    ]);
    expect(res.checks![0]!.explanation).toBe('Expected at least one row, got none.');
  });

  it('a check whose query fails on the candidate tables fails with the error, and the others still run', async () => {
    const { runner: r, calls } = runner({
      broken: new AnswerError(
        'SqlError',
        'PostgreSQL said: relation "work.customers" does not exist.',
        'PostgreSQL a répondu : relation "work.customers" does not exist.',
      ),
      fine: rs([]),
    });
    const res = await runChecks(
      [check('a', 'broken', { noRows: true }, 'Load customers.'), check('b', 'fine', { noRows: true })],
      r,
    );
    expect(calls).toEqual(['broken', 'fine']);
    expect(res.checks![0]).toMatchObject({ pass: false, error: 'SqlError' });
    expect(res.checks![0]!.hint).toMatch(
      /^Load customers\. \(The check could not run on your tables: .*work\.customers/,
    );
    expect(res.checks![1]!.pass).toBe(true);
    expect(res.hintFr).toBe(
      '1 vérification sur 2 en échec : a. a : Load customers. (La vérification n’a pas pu s’exécuter sur vos tables : PostgreSQL a répondu : relation "work.customers" does not exist.)',
    );
  });

  it('a database that is down is thrown, not graded', async () => {
    const { runner: r } = runner({ q: new AnswerError('Unavailable', 'down') });
    await expect(runChecks([check('a', 'q', { noRows: true })], r)).rejects.toMatchObject({
      reason: 'Unavailable',
    });
  });

  it('a sameAsSource query that does not run is the template’s mistake (SourceError), naming the check', async () => {
    const { runner: r } = runner({ q: rs([[1]]) }, { bad: new AnswerError('SqlError', 'syntax error') });
    const err = await runChecks([check('complete', 'q', { sameAsSource: 'bad' })], r).catch((e) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err.message).toMatch(/sameAsSource query of check complete does not run: syntax error/);
  });

  it('checks that cannot start before the deadline fail as not run', async () => {
    let t = 0;
    const slow: CheckRunner = {
      work: async () => {
        t += 15_000;
        return rs([]);
      },
      source: async () => rs([]),
    };
    const res = await runChecks(
      [
        check('a', 'q', { noRows: true }),
        check('b', 'q', { noRows: true }),
        check('c', 'q', { noRows: true }),
      ],
      slow,
      { deadlineMs: 20_000, now: () => t },
    );
    expect(res.checks!.map((c) => c.pass)).toEqual([true, true, false]);
    expect(res.checks![2]).toMatchObject({ error: 'Timeout' });
    expect(res.checks![2]!.hint).toMatch(/Not run/);
  });
});
