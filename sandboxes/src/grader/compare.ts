/**
 * Compares a candidate's result with the reference and says, in words a candidate understands,
 * what differs: columns, missing rows, extra rows, wrong values in one column, wrong order.
 */
export interface ResultSet {
  columns: string[];
  rows: unknown[][];
}

export interface CompareOptions {
  orderMatters: boolean;
  /** Largest absolute difference accepted between two numbers. */
  numericTolerance: number;
  /** Compare columns by position only. */
  ignoreColumnNames: boolean;
}

export interface Grade {
  pass: boolean;
  explanation: string;
  expectedRows: number;
  actualRows: number;
  missing?: unknown[][];
  extra?: unknown[][];
}

const SHOWN = 3;

/** Normalises a cell: numbers and numeric strings (bigint, numeric) become numbers, dates ISO strings. */
export function normalize(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value.trim())) return Number(value);
  if (typeof value === 'object') return JSON.stringify(sortKeys(value));
  return value;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v instanceof Date ? v.toISOString() : v;
}

const cellEqual = (a: unknown, b: unknown, tol: number) =>
  typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) <= tol + 1e-9 : a === b;

const rowEqual = (a: unknown[], b: unknown[], tol: number) =>
  a.length === b.length && a.every((v, i) => cellEqual(v, b[i], tol));

/** A key equal for rows equal within tolerance (numbers rounded to the tolerance's decimals). */
function rowKey(row: unknown[], tol: number): string {
  const decimals = tol > 0 ? Math.max(0, Math.ceil(-Math.log10(tol * 2))) : 9;
  return JSON.stringify(row.map((v) => (typeof v === 'number' ? Number(v.toFixed(decimals)) : v)));
}

/** Rows of `a` not matched in `b` (multiset difference). */
function difference(a: unknown[][], b: unknown[][], tol: number): unknown[][] {
  const counts = new Map<string, number>();
  for (const r of b) counts.set(rowKey(r, tol), (counts.get(rowKey(r, tol)) ?? 0) + 1);
  const out: unknown[][] = [];
  for (const r of a) {
    const k = rowKey(r, tol);
    const n = counts.get(k) ?? 0;
    if (n > 0) counts.set(k, n - 1);
    else out.push(r);
  }
  return out;
}

export const formatRow = (row: unknown[]) =>
  `(${row.map((v) => (v === null ? 'NULL' : typeof v === 'string' ? v : String(v))).join(', ')})`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function compareResults(expected: ResultSet, actual: ResultSet, opts: CompareOptions): Grade {
  const base = { expectedRows: expected.rows.length, actualRows: actual.rows.length };
  const fail = (explanation: string, extra: Partial<Grade> = {}): Grade => ({
    pass: false,
    explanation,
    ...base,
    ...extra,
  });

  if (expected.columns.length !== actual.columns.length) {
    return fail(
      `Expected ${plural(expected.columns.length, 'column')} (${expected.columns.join(', ')}), got ${actual.columns.length} (${actual.columns.join(', ')}).`,
    );
  }
  if (!opts.ignoreColumnNames) {
    for (let i = 0; i < expected.columns.length; i++) {
      if (expected.columns[i]!.toLowerCase() !== actual.columns[i]!.toLowerCase()) {
        return fail(`Column ${i + 1} should be named ${expected.columns[i]}, got ${actual.columns[i]}.`);
      }
    }
  }

  const tol = opts.numericTolerance;
  const exp = expected.rows.map((r) => r.map(normalize));
  const act = actual.rows.map((r) => r.map(normalize));
  const missing = difference(exp, act, tol);
  const extra = difference(act, exp, tol);

  if (missing.length === 0 && extra.length === 0) {
    if (!opts.orderMatters)
      return {
        pass: true,
        explanation: `Correct: ${plural(exp.length, 'row')} match the reference.`,
        ...base,
      };
    const at = exp.findIndex((r, i) => !rowEqual(r, act[i]!, tol));
    if (at < 0)
      return {
        pass: true,
        explanation: `Correct: ${plural(exp.length, 'row')} match the reference, in order.`,
        ...base,
      };
    return fail(
      `The rows are right but in the wrong order: row ${at + 1} should be ${formatRow(exp[at]!)}, got ${formatRow(act[at]!)}. Check your ORDER BY.`,
    );
  }

  const parts: string[] = [];
  if (act.length === 0)
    parts.push(`Your query returned 0 rows; the reference returns ${plural(exp.length, 'row')}.`);
  else if (exp.length === act.length) {
    // Same number of rows: is one column alone wrong?
    const culprits = expected.columns.filter((_, c) => {
      const drop = (rows: unknown[][]) => rows.map((r) => r.filter((_, i) => i !== c));
      return difference(drop(exp), drop(act), tol).length === 0;
    });
    if (culprits.length === 1)
      parts.push(
        `Every row is there, but column ${culprits[0]} has wrong values in ${plural(missing.length, 'row')}.`,
      );
    else parts.push(`${plural(missing.length, 'row')} of ${exp.length} differ from the reference.`);
  } else {
    parts.push(`Expected ${plural(exp.length, 'row')}, got ${act.length}.`);
  }
  if (missing.length)
    parts.push(
      `${plural(missing.length, 'row')} missing, e.g. ${missing.slice(0, SHOWN).map(formatRow).join(', ')}.`,
    );
  if (extra.length)
    parts.push(
      `${plural(extra.length, 'extra row')}, e.g. ${extra.slice(0, SHOWN).map(formatRow).join(', ')}.`,
    );
  return fail(parts.join(' '), { missing: missing.slice(0, 20), extra: extra.slice(0, 20) });
}
