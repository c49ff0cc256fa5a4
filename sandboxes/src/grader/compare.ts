/**
 * Compares a candidate's result with the reference and says, in words a candidate understands,
 * what differs: columns, missing rows, extra rows, wrong values in one column, wrong order.
 */
import { cutText } from '@epreuve/crds';

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
  /** For staff: the full diff, with expected and actual values. */
  explanation: string;
  /**
   * For the candidate: what kind of mistake it is (columns by name, too many or too few rows,
   * order, wrong values by column, NULLs) — never a value or a row count of the reference, which
   * would let an answer be rebuilt by trial as a literal.
   */
  hint: string;
  /** The hint in French, for a candidate whose page speaks French. */
  hintFr: string;
  expectedRows: number;
  actualRows: number;
  missing?: unknown[][];
  extra?: unknown[][];
}

const SHOWN = 3;

/**
 * How deep a value in a result may nest (MongoDB's own limit is 100). Deeper, the comparison
 * would exhaust the stack; an answer could choose that on a hidden variant to turn a graded
 * failure into a server error that gives the attempt back.
 */
export const MAX_NESTING = 100;

/** A result the comparison cannot read: the answer's failure (a graded one), never the platform's. */
export class UncomparableResult extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UncomparableResult';
  }
}

/** An invalid Date (a year JavaScript cannot hold) compares as such, instead of throwing. */
const isoOrInvalid = (d: Date) => (Number.isNaN(d.getTime()) ? 'Invalid Date' : d.toISOString());

/**
 * An integer past 2^53 as an exact string (`…n`), or undefined: as a JavaScript number,
 * 9007199254740993 would equal 9007199254740992, and a sum off by one would pass.
 */
function exactBigInteger(text: string): string | undefined {
  const integral = /^(-?\d+)(?:\.0*)?$/.exec(text);
  if (!integral) return undefined;
  const n = BigInt(integral[1]!);
  return n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER) ? `${n}n` : undefined;
}

/**
 * Normalises a cell: numbers and numeric strings (bigint, numeric) become numbers (integers past
 * 2^53 exact strings), dates ISO strings.
 */
export function normalize(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return isoOrInvalid(value);
  if (typeof value === 'bigint') return exactBigInteger(String(value)) ?? Number(value);
  if (typeof value === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value.trim()))
    return exactBigInteger(value.trim()) ?? Number(value);
  if (typeof value === 'object') return JSON.stringify(sortKeys(value, 0));
  return value;
}

function sortKeys(v: unknown, depth: number): unknown {
  if (depth > MAX_NESTING) throw new UncomparableResult(`a value nests deeper than ${MAX_NESTING} levels`);
  if (Array.isArray(v)) return v.map((x) => sortKeys(x, depth + 1));
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k], depth + 1)]),
    );
  }
  return v instanceof Date ? isoOrInvalid(v) : v;
}

/**
 * Two cells equal: numbers within the tolerance (NaN equals NaN and an infinity itself, as
 * PostgreSQL sorts them), anything else exactly.
 */
function cellEqual(a: unknown, b: unknown, tol: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'number' || typeof b !== 'number') return false;
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return Math.abs(a - b) <= tol + 1e-9;
}

const rowEqual = (a: unknown[], b: unknown[], tol: number) =>
  a.length === b.length && a.every((v, i) => cellEqual(v, b[i], tol));

/**
 * A cell in a key: a number tagged as one (as JSON, NaN and the infinities would read as NULL, and
 * a NULL where the reference has NaN would pass), or `finite` when its value is left out.
 */
const tagged = (v: unknown, finite?: object) =>
  typeof v === 'number' ? (finite && Number.isFinite(v) ? finite : { n: String(v) }) : v;
/** Equal for rows equal cell by cell. */
const exactKey = (row: unknown[]) => JSON.stringify(row.map((v) => tagged(v)));
const FINITE = {};
/** Equal for rows whose cells other than finite numbers are equal: candidates within tolerance. */
const shapeKey = (row: unknown[]) => JSON.stringify(row.map((v) => tagged(v, FINITE)));

function push<K, V>(map: Map<K, V[]>, key: K, value: V) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Rows of `a` not matched in `b` (multiset difference), rows matching when every cell is equal
 * within the tolerance. Exact matches first; what is left is matched among rows of the same shape
 * (equal but for their finite numbers) in order of their first number, each to the first unused
 * row within the tolerance. (Rounding rows to a key, as before red team 5, failed 10.004 against
 * 10.006 at 0.01 and passed 0.51 against 1.49 at 0.5.) Greedy: with one number per row it finds
 * a full matching when there is one; with several it may miss one only for rows closer to each
 * other than twice the tolerance.
 */
function difference(a: unknown[][], b: unknown[][], tol: number): unknown[][] {
  const unmatched = new Map<string, unknown[][]>();
  for (const r of b) push(unmatched, exactKey(r), r);
  const left: unknown[][] = [];
  for (const r of a) {
    const same = unmatched.get(exactKey(r));
    if (same?.length) same.pop();
    else left.push(r);
  }
  if (left.length === 0) return left;

  const byShape = new Map<string, unknown[][]>();
  for (const rows of unmatched.values()) for (const r of rows) push(byShape, shapeKey(r), r);
  const firstNumber = (row: unknown[]) => {
    for (const v of row) if (typeof v === 'number' && Number.isFinite(v)) return v;
    return undefined;
  };
  const candidates = new Map<string, { rows: unknown[][]; at: number[]; used: boolean[] }>();
  for (const [shape, rows] of byShape) {
    const sorted = rows
      .map((r) => ({ r, x: firstNumber(r) }))
      .filter((e): e is { r: unknown[]; x: number } => e.x !== undefined)
      .sort((p, q) => p.x - q.x);
    candidates.set(shape, {
      rows: sorted.map((e) => e.r),
      at: sorted.map((e) => e.x),
      used: sorted.map(() => false),
    });
  }
  const out: unknown[][] = [];
  const ordered = left
    .map((r) => ({ r, x: firstNumber(r) }))
    .sort((p, q) => (p.x ?? Number.NEGATIVE_INFINITY) - (q.x ?? Number.NEGATIVE_INFINITY));
  for (const { r, x } of ordered) {
    const c = x === undefined ? undefined : candidates.get(shapeKey(r));
    if (!c || x === undefined) {
      out.push(r);
      continue;
    }
    // The first candidate whose first number is not below x - tol (binary search), then on.
    let lo = 0;
    let hi = c.at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c.at[mid]! < x - tol - 1e-9) lo = mid + 1;
      else hi = mid;
    }
    let found = -1;
    for (let i = lo; i < c.at.length && c.at[i]! <= x + tol + 1e-9; i++)
      if (!c.used[i] && rowEqual(r, c.rows[i]!, tol)) {
        found = i;
        break;
      }
    if (found < 0) out.push(r);
    else c.used[found] = true;
  }
  // Back in the order of `a`, as the explanation shows them.
  const rank = new Map(a.map((r, i) => [r, i]));
  return out.sort((p, q) => rank.get(p)! - rank.get(q)!);
}

/**
 * With as many rows as the reference, pairs rows up — by position when order matters, else by the
 * first column whose values identify rows — and names the columns holding wrong values.
 */
function wrongColumns(
  columns: string[],
  exp: unknown[][],
  act: unknown[][],
  opts: CompareOptions,
): string | undefined {
  const tol = opts.numericTolerance;
  let pairs: Array<[unknown[], unknown[]]> | undefined;
  let keyColumn = -1;
  if (opts.orderMatters) pairs = exp.map((r, i) => [r, act[i]!]);
  for (let c = 0; c < columns.length && !pairs; c++) {
    const keysE = new Map(exp.map((r) => [JSON.stringify(r[c]), r]));
    const keysA = new Map(act.map((r) => [JSON.stringify(r[c]), r]));
    if (keysE.size !== exp.length || keysA.size !== act.length) continue;
    if (![...keysE.keys()].every((k) => keysA.has(k))) continue;
    keyColumn = c;
    pairs = [...keysE].map(([k, r]) => [r, keysA.get(k)!]);
  }
  if (!pairs) return undefined;
  const bad = columns.map((_, c) => pairs.filter(([e, a]) => !cellEqual(e[c], a[c], tol)).length);
  const named = columns.map((n, c) => [n, bad[c]!] as const).filter(([, n]) => n > 0);
  if (named.length === 0 || named.length === columns.length) return undefined;
  const example = pairs.find(([e, a]) => !rowEqual(e, a, tol))!;
  const where =
    keyColumn >= 0
      ? `for ${columns[keyColumn]} ${formatRow([example[0][keyColumn]])}`
      : `in row ${pairs.indexOf(example) + 1}`;
  const list = named.map(([n, k]) => `${n} (${plural(k, 'row')})`).join(', ');
  const verb = named.length === 1 ? 'column has' : 'columns have';
  return `Every row is there, but the ${verb} wrong values: ${list}. E.g. ${where}, expected ${formatRow(example[0])}, got ${formatRow(example[1])}.`;
}

/** Most characters of one value quoted in an explanation: rows are examples, not dumps. */
export const MAX_QUOTED_VALUE = 200;

export const formatRow = (row: unknown[]) =>
  `(${row.map((v) => quoted(v === null ? 'NULL' : typeof v === 'string' ? v : String(v))).join(', ')})`;

const quoted = (text: string) =>
  text.length <= MAX_QUOTED_VALUE ? text : `${cutText(text, MAX_QUOTED_VALUE)} (${text.length} characters)`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A hint in both of the candidate page's languages. */
interface Said {
  en: string;
  fr: string;
}
const join = (parts: Said[]): Said => ({
  en: parts.map((p) => p.en).join(' '),
  fr: parts.map((p) => p.fr).join(' '),
});
const CORRECT: Said = { en: 'Correct.', fr: 'Correct.' };

export function compareResults(expected: ResultSet, actual: ResultSet, opts: CompareOptions): Grade {
  const base = { expectedRows: expected.rows.length, actualRows: actual.rows.length };
  const fail = (explanation: string, hint: Said, extra: Partial<Grade> = {}): Grade => ({
    pass: false,
    explanation,
    hint: hint.en,
    hintFr: hint.fr,
    ...base,
    ...extra,
  });
  const namesOf = (cols: string[]) => cols.map((c) => c.toLowerCase());

  if (expected.columns.length !== actual.columns.length) {
    return fail(
      `Expected ${plural(expected.columns.length, 'column')} (${expected.columns.join(', ')}), got ${actual.columns.length} (${actual.columns.join(', ')}).`,
      columnsHint(expected.columns, actual.columns, opts.ignoreColumnNames),
    );
  }
  if (!opts.ignoreColumnNames) {
    for (let i = 0; i < expected.columns.length; i++) {
      if (expected.columns[i]!.toLowerCase() !== actual.columns[i]!.toLowerCase()) {
        return fail(
          `Column ${i + 1} should be named ${expected.columns[i]}, got ${actual.columns[i]}.`,
          namesOf(expected.columns).includes(actual.columns[i]!.toLowerCase())
            ? {
                en: 'Your columns are not in the order the task asks for.',
                fr: 'Vos colonnes ne sont pas dans l’ordre que demande l’énoncé.',
              }
            : {
                en: `Column ${i + 1} should be named ${expected.columns[i]}, not ${actual.columns[i]}.`,
                fr: `La colonne ${i + 1} devrait s’appeler ${expected.columns[i]}, et non ${actual.columns[i]}.`,
              },
        );
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
        hint: CORRECT.en,
        hintFr: CORRECT.fr,
        ...base,
      };
    const at = exp.findIndex((r, i) => !rowEqual(r, act[i]!, tol));
    if (at < 0)
      return {
        pass: true,
        explanation: `Correct: ${plural(exp.length, 'row')} match the reference, in order.`,
        hint: CORRECT.en,
        hintFr: CORRECT.fr,
        ...base,
      };
    return fail(
      `The rows are right but in the wrong order: row ${at + 1} should be ${formatRow(exp[at]!)}, got ${formatRow(act[at]!)}. Check your ORDER BY.`,
      {
        en: 'The rows are right but in the wrong order. Check your ORDER BY.',
        fr: 'Les lignes sont justes mais dans le mauvais ordre. Vérifiez votre ORDER BY.',
      },
    );
  }

  const parts: string[] = [];
  const columnsWrong = exp.length === act.length ? wrongColumns(expected.columns, exp, act, opts) : undefined;
  if (columnsWrong) parts.push(columnsWrong);
  else {
    if (act.length === 0)
      parts.push(`Your query returned 0 rows; the reference returns ${plural(exp.length, 'row')}.`);
    else if (exp.length === act.length)
      parts.push(`${plural(missing.length, 'row')} of ${exp.length} differ from the reference.`);
    else parts.push(`Expected ${plural(exp.length, 'row')}, got ${act.length}.`);
    if (missing.length)
      parts.push(
        `${plural(missing.length, 'row')} missing, e.g. ${missing.slice(0, SHOWN).map(formatRow).join(', ')}.`,
      );
    if (extra.length)
      parts.push(
        `${plural(extra.length, 'extra row')}, e.g. ${extra.slice(0, SHOWN).map(formatRow).join(', ')}.`,
      );
  }
  return fail(parts.join(' '), rowsHint(expected.columns, exp, act, missing, extra, columnsWrong), {
    missing: missing.slice(0, 20),
    extra: extra.slice(0, 20),
  });
}

/** Which columns are missing or extra, by name; or that the count differs when names are not compared. */
function columnsHint(expected: string[], actual: string[], ignoreNames: boolean): Said {
  const count: Said =
    actual.length < expected.length
      ? {
          en: 'Your query returns fewer columns than the task asks for.',
          fr: 'Votre requête renvoie moins de colonnes que l’énoncé n’en demande.',
        }
      : {
          en: 'Your query returns more columns than the task asks for.',
          fr: 'Votre requête renvoie plus de colonnes que l’énoncé n’en demande.',
        };
  if (ignoreNames) return count;
  const exp = expected.map((c) => c.toLowerCase());
  const act = actual.map((c) => c.toLowerCase());
  const missing = expected.filter((c) => !act.includes(c.toLowerCase()));
  const extra = actual.filter((c) => !exp.includes(c.toLowerCase()));
  const parts: Said[] = [];
  if (missing.length)
    parts.push({
      en: `Missing column${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}.`,
      fr: `${missing.length > 1 ? 'Colonnes manquantes' : 'Colonne manquante'} : ${missing.join(', ')}.`,
    });
  if (extra.length)
    parts.push({
      en: `Column${extra.length > 1 ? 's' : ''} the task does not ask for: ${extra.join(', ')}.`,
      fr: `${extra.length > 1 ? 'Colonnes que l’énoncé ne demande pas' : 'Colonne que l’énoncé ne demande pas'} : ${extra.join(', ')}.`,
    });
  return parts.length ? join(parts) : count;
}

/** The kind of row mistake, without a value or the reference's row count. */
function rowsHint(
  columns: string[],
  exp: unknown[][],
  act: unknown[][],
  missing: unknown[][],
  extra: unknown[][],
  columnsWrong: string | undefined,
): Said {
  const parts: Said[] = [];
  if (columnsWrong) {
    const names = columns.filter((_, c) => exp.some((r, i) => act[i] && r[c] !== act[i]![c]));
    parts.push(
      names.length && names.length < columns.length
        ? {
            en: `Every row is there, but some values are wrong in: ${names.join(', ')}.`,
            fr: `Toutes les lignes sont là, mais certaines valeurs sont fausses dans : ${names.join(', ')}.`,
          }
        : {
            en: 'Every row is there, but some values are wrong.',
            fr: 'Toutes les lignes sont là, mais certaines valeurs sont fausses.',
          },
    );
  } else if (act.length === 0)
    parts.push({ en: 'Your query returns no rows.', fr: 'Votre requête ne renvoie aucune ligne.' });
  else if (act.length < exp.length)
    parts.push({ en: 'Your query returns too few rows.', fr: 'Votre requête renvoie trop peu de lignes.' });
  else if (act.length > exp.length)
    parts.push({ en: 'Your query returns too many rows.', fr: 'Votre requête renvoie trop de lignes.' });
  else
    parts.push({
      en: 'Your query returns the right number of rows, but some of them differ.',
      fr: 'Votre requête renvoie le bon nombre de lignes, mais certaines diffèrent.',
    });
  const hasNull = (rows: unknown[][]) => rows.some((r) => r.some((v) => v === null));
  if (hasNull(missing) || hasNull(extra))
    parts.push({
      en: 'Check how your query handles NULLs.',
      fr: 'Vérifiez comment votre requête traite les NULL.',
    });
  return join(parts);
}
