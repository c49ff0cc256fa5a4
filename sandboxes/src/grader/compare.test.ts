import { describe, expect, it } from 'vitest';
import {
  compareResults,
  formatRow,
  MAX_NESTING,
  MAX_QUOTED_VALUE,
  type ResultSet,
  UncomparableResult,
} from './compare.ts';

const rs = (columns: string[], rows: unknown[][]): ResultSet => ({ columns, rows });
const opts = { orderMatters: false, numericTolerance: 0, ignoreColumnNames: false };
const ref = rs(
  ['country', 'n'],
  [
    ['FR', 3],
    ['HT', 2],
    ['CA', 1],
  ],
);

describe('compareResults', () => {
  it('passes the same rows in any order when order does not matter', () => {
    expect(
      compareResults(
        ref,
        rs(
          ['country', 'n'],
          [
            ['CA', 1],
            ['FR', 3],
            ['HT', 2],
          ],
        ),
        opts,
      ).pass,
    ).toBe(true);
  });

  // Red team 5: rows were matched by a key rounded to the tolerance's decimals, so two values
  // within the tolerance could round apart (a right answer failed) and two far apart round together.
  describe('matches rows within the tolerance, not by rounding', () => {
    const one = (x: unknown) => rs(['x'], [[x]]);
    it.each([
      [0.01, 10.004, 10.006, true],
      [0.01, 10.015, 10.024, true],
      [0.01, 10.0, 10.02, false],
      [0.5, 0.51, 1.49, false],
      [0.5, 0.51, 1.0, true],
      [0, 0.1 + 0.2, 0.3, true],
    ])('at %f: %f against %f passes: %s', (numericTolerance, expected, actual, pass) => {
      for (const orderMatters of [false, true])
        expect(
          compareResults(one(expected), one(actual), { ...opts, numericTolerance, orderMatters }).pass,
        ).toBe(pass);
    });

    it('pairs each row with one within the tolerance, whatever their order, and counts duplicates', () => {
      const tol = { ...opts, numericTolerance: 0.01 };
      const expected = rs(
        ['k', 'x'],
        [
          ['a', 1.0],
          ['a', 2.0],
          ['b', 1.0],
        ],
      );
      const passes = (rows: unknown[][]) => compareResults(expected, rs(['k', 'x'], rows), tol).pass;
      expect(
        passes([
          ['a', 2.004],
          ['b', 0.995],
          ['a', 0.996],
        ]),
      ).toBe(true);
      // Same values, but the text column differs: no match within tolerance across shapes.
      expect(
        passes([
          ['a', 2.004],
          ['a', 0.995],
          ['a', 0.996],
        ]),
      ).toBe(false);
      // One row of the reference matched twice does not hide a missing one.
      const g = compareResults(rs(['x'], [[1.0], [5.0]]), rs(['x'], [[1.001], [0.999]]), tol);
      expect(g.pass).toBe(false);
      expect(g.missing).toEqual([[5]]);
      expect(g.extra).toHaveLength(1);
    });

    it('tells NULL from NaN and the infinities, and matches those with themselves', () => {
      expect(compareResults(one(null), one(Number.NaN), opts).pass).toBe(false);
      expect(compareResults(one(null), one(Number.POSITIVE_INFINITY), opts).pass).toBe(false);
      expect(compareResults(one(Number.NEGATIVE_INFINITY), one(Number.POSITIVE_INFINITY), opts).pass).toBe(
        false,
      );
      expect(compareResults(one(Number.NaN), one(Number.NaN), opts).pass).toBe(true);
      expect(compareResults(one(Number.POSITIVE_INFINITY), one(Number.POSITIVE_INFINITY), opts).pass).toBe(
        true,
      );
      expect(
        compareResults(one(Number.POSITIVE_INFINITY), one(Number.POSITIVE_INFINITY), {
          ...opts,
          orderMatters: true,
        }).pass,
      ).toBe(true);
    });

    it('matches 10 000 rows off by less than the tolerance quickly', () => {
      const rows = Array.from({ length: 10_000 }, (_, i) => [i * 0.37]);
      const shifted = rows.map(([x]) => [(x as number) + 0.004]).reverse();
      const started = performance.now();
      expect(
        compareResults(rs(['x'], rows), rs(['x'], shifted), { ...opts, numericTolerance: 0.01 }).pass,
      ).toBe(true);
      expect(performance.now() - started).toBeLessThan(2000);
    });
  });

  it('treats numeric strings (bigint, numeric) as numbers, within tolerance', () => {
    const g = compareResults(rs(['x'], [['10.00'], ['2']]), rs(['x'], [[10.004], [2n]]), {
      ...opts,
      numericTolerance: 0.005,
    });
    expect(g.pass).toBe(true);
    expect(compareResults(rs(['x'], [['10.00']]), rs(['x'], [[10.01]]), opts).pass).toBe(false);
  });

  // A red-team finding: integers past 2^53 compared as JavaScript numbers, so a sum off by one passed.
  it('compares integers past 2^53 exactly, however they are written', () => {
    const big = (v: unknown) => rs(['total'], [[v]]);
    expect(compareResults(big('9007199254740993'), big('9007199254740992'), opts).pass).toBe(false);
    expect(compareResults(big('-9007199254740993'), big(-9007199254740992n), opts).pass).toBe(false);
    expect(compareResults(big('9007199254740993'), big(9007199254740993n), opts).pass).toBe(true);
    expect(compareResults(big('9007199254740993.00'), big('9007199254740993'), opts).pass).toBe(true);
    expect(compareResults(big('123'), big(123n), opts).pass).toBe(true);
  });

  it('names missing and extra rows', () => {
    const g = compareResults(
      ref,
      rs(
        ['country', 'n'],
        [
          ['FR', 3],
          ['HT', 2],
          ['US', 9],
          ['GB', 1],
        ],
      ),
      opts,
    );
    expect(g.pass).toBe(false);
    expect(g.explanation).toMatch(/Expected 3 rows, got 4/);
    expect(g.explanation).toMatch(/1 row missing, e.g. \(CA, 1\)/);
    expect(g.explanation).toMatch(/2 extra rows, e.g. \(US, 9\), \(GB, 1\)/);
  });

  it('points at the one column with wrong values', () => {
    const g = compareResults(
      ref,
      rs(
        ['country', 'n'],
        [
          ['FR', 3],
          ['HT', 5],
          ['CA', 1],
        ],
      ),
      opts,
    );
    expect(g.explanation).toMatch(
      /the column has wrong values: n \(1 row\)\. E\.g\. for country \(HT\), expected \(HT, 2\), got \(HT, 5\)/,
    );
  });

  it('says so when the rows are right but the order is not', () => {
    const g = compareResults(
      ref,
      rs(
        ['country', 'n'],
        [
          ['HT', 2],
          ['FR', 3],
          ['CA', 1],
        ],
      ),
      { ...opts, orderMatters: true },
    );
    expect(g.pass).toBe(false);
    expect(g.explanation).toMatch(
      /wrong order: row 1 should be \(FR, 3\), got \(HT, 2\)\. Check your ORDER BY/,
    );
  });

  it('names a wrong column count and a wrong column name', () => {
    expect(compareResults(ref, rs(['country'], [['FR']]), opts).explanation).toMatch(
      /Expected 2 columns \(country, n\), got 1 \(country\)/,
    );
    expect(compareResults(ref, rs(['country', 'total'], ref.rows), opts).explanation).toMatch(
      /Column 2 should be named n, got total/,
    );
    expect(
      compareResults(ref, rs(['COUNTRY', 'total'], ref.rows), { ...opts, ignoreColumnNames: true }).pass,
    ).toBe(true);
  });

  it('explains an empty answer', () => {
    expect(compareResults(ref, rs(['country', 'n'], []), opts).explanation).toMatch(
      /returned 0 rows; the reference returns 3 rows/,
    );
  });

  it('reads invalid dates and refuses values nested past the limit as the answer’s failure, without exhausting the stack', () => {
    const bad = compareResults(
      { columns: ['t'], rows: [['2026-01-01T00:00:00.000Z']] },
      {
        columns: ['t'],
        rows: [[new Date(Number.NaN)]],
      },
      opts,
    );
    expect(bad.pass).toBe(false);
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(() =>
      compareResults({ columns: ['j'], rows: [[1]] }, { columns: ['j'], rows: [[deep]] }, opts),
    ).toThrow(UncomparableResult);
    let fine: unknown = 1;
    for (let i = 0; i < MAX_NESTING; i++) fine = [fine];
    expect(
      compareResults({ columns: ['j'], rows: [[fine]] }, { columns: ['j'], rows: [[fine]] }, opts).pass,
    ).toBe(true);
  });

  it('compares NULLs, dates and nested documents', () => {
    const d = new Date('2025-01-01T00:00:00Z');
    const a = rs(['a', 'b', 'c'], [[null, d, { y: 1, x: [1, 2] }]]);
    const b = rs(['a', 'b', 'c'], [[null, '2025-01-01T00:00:00.000Z', { x: [1, 2], y: 1 }]]);
    expect(compareResults(a, b, opts).pass).toBe(true);
    expect(compareResults(a, rs(['a', 'b', 'c'], [['', d, { y: 1, x: [1, 2] }]]), opts).pass).toBe(false);
  });
});

describe('the candidate hint', () => {
  // The reference's values (the small numbers also name column positions, so its strings stand for them).
  const leaks = (hint: string) => /\b(FR|HT|CA)\b/.test(hint) || /\b3 rows?\b/.test(hint);
  const cases: Array<[string, ResultSet, RegExp, RegExp]> = [
    [
      'a missing column',
      rs(['country'], [['FR'], ['HT'], ['CA']]),
      /Missing column: n\./,
      /^Colonne manquante : n\.$/,
    ],
    [
      'an extra column',
      rs(['country', 'n', 'x'], [['FR', 3, 0]]),
      /does not ask for: x/,
      /ne demande pas : x\.$/,
    ],
    [
      'a renamed column',
      rs(['country', 'total'], ref.rows),
      /Column 2 should be named n, not total/,
      /^La colonne 2 devrait s’appeler n, et non total\.$/,
    ],
    ['too few rows', rs(['country', 'n'], [['FR', 3]]), /too few rows/, /trop peu de lignes/],
    [
      'too many rows',
      rs(['country', 'n'], [...ref.rows, ['DE', 9]]),
      /too many rows/,
      /renvoie trop de lignes/,
    ],
    ['no rows', rs(['country', 'n'], []), /no rows/, /ne renvoie aucune ligne/],
    [
      'wrong values in one column',
      rs(
        ['country', 'n'],
        [
          ['FR', 30],
          ['HT', 2],
          ['CA', 1],
        ],
      ),
      /values are wrong in: n\./,
      /valeurs sont fausses dans : n\./,
    ],
    [
      'a NULL case',
      rs(
        ['country', 'n'],
        [
          ['FR', 3],
          ['HT', null],
          [null, 1],
        ],
      ),
      /NULLs/,
      /traite les NULL/,
    ],
  ];
  for (const [what, actual, expected, expectedFr] of cases) {
    it(`names ${what} without a value or row count of the reference, in English and in French`, () => {
      const grade = compareResults(ref, actual, opts);
      expect(grade.pass).toBe(false);
      expect(grade.hint).toMatch(expected);
      expect(grade.hintFr).toMatch(expectedFr);
      expect(leaks(grade.hint), grade.hint).toBe(false);
      expect(leaks(grade.hintFr), grade.hintFr).toBe(false);
    });
  }

  it('says the order is wrong without showing rows', () => {
    const grade = compareResults(ref, rs(['country', 'n'], [...ref.rows].reverse()), {
      ...opts,
      orderMatters: true,
    });
    expect(grade.hint).toBe('The rows are right but in the wrong order. Check your ORDER BY.');
    expect(grade.hintFr).toBe('Les lignes sont justes mais dans le mauvais ordre. Vérifiez votre ORDER BY.');
    expect(grade.explanation).toMatch(/row 1 should be \(FR, 3\)/); // staff still see the diff
  });
});

describe('formatRow', () => {
  it('quotes values whole up to MAX_QUOTED_VALUE characters, and cuts longer ones saying how long they were', () => {
    expect(formatRow(['FR', 3, null, 12.5])).toBe('(FR, 3, NULL, 12.5)');
    const long = 'z'.repeat(1_600_000);
    const row = formatRow([long, 1]);
    expect(row.length).toBeLessThan(MAX_QUOTED_VALUE + 40);
    expect(row).toMatch(/^\(z+… \(1600000 characters\), 1\)$/);
  });

  it('keeps an explanation quoting a huge extra row small', () => {
    const exp: ResultSet = { columns: ['a'], rows: [['x']] };
    const act: ResultSet = { columns: ['a'], rows: [['x'], ['\u0001'.repeat(1_600_000)]] };
    const { explanation } = compareResults(exp, act, {
      orderMatters: false,
      numericTolerance: 0,
      ignoreColumnNames: false,
    });
    expect(explanation.length).toBeLessThan(2_000);
  });
});
