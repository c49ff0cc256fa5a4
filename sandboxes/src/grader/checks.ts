import type { CheckSpec, GradeResponse } from '@epreuve/crds';
import { compareResults, formatRow, type ResultSet } from './compare.ts';
import { AnswerError } from './sql.ts';

/**
 * The `check` grader: named checks a template author writes for a build task (collect, load,
 * model), run on the candidate's work area. Each check is one read-only query (SQL, or a MongoDB
 * pipeline whose documents are the rows) with an expectation:
 * no rows (it lists what is wrong), some rows, literal rows, or the same result as a query on the
 * grader-only copy of what the data API serves. Candidates see each failing check's name and the
 * author's hint; staff see what the query returned.
 */
export type CheckOutcome = NonNullable<GradeResponse['checks']>[number];

/** How checks reach the databases (injected, so the evaluation is unit-tested without PostgreSQL). */
export interface CheckRunner {
  /**
   * Runs a check on the candidate's work area: its `sql` on their PostgreSQL database, where it reads
   * their `work` schema, or its `mongo` pipeline on a collection of their MongoDB database.
   */
  work(check: CheckSpec): Promise<ResultSet>;
  /** Runs a `sameAsSource` query on the grader-only copy of what the data API serves. */
  source(sql: string): Promise<ResultSet>;
}

/** Thrown when a `sameAsSource` query does not run: the template's mistake, or its database is down. */
export class SourceError extends Error {
  override readonly cause: AnswerError;
  constructor(check: string, cause: AnswerError) {
    super(`the sameAsSource query of check ${check} does not run: ${cause.message}`);
    this.name = 'SourceError';
    this.cause = cause;
  }
}

const SHOWN = 3;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Literal expected cells are text; a check's cells become text the same way (NULL for null). */
function asText(rows: unknown[][]): unknown[][] {
  return rows.map((r) => r.map((v) => (typeof v === 'boolean' ? String(v) : v)));
}

/** Evaluates one check's result against its expectation: pass, and what staff read. */
export async function evaluate(
  check: CheckSpec,
  actual: ResultSet,
  source: (sql: string) => Promise<ResultSet>,
): Promise<{ pass: boolean; explanation: string }> {
  const e = check.expect;
  const n = actual.rows.length;
  const sample = () => actual.rows.slice(0, SHOWN).map(formatRow).join(', ');
  if (e.noRows)
    return n === 0
      ? { pass: true, explanation: 'Returned no rows, as expected.' }
      : { pass: false, explanation: `Expected no rows, got ${n}, e.g. ${sample()}.` };
  if (e.someRows)
    return n > 0
      ? { pass: true, explanation: `Returned ${plural(n, 'row')}, as expected.` }
      : { pass: false, explanation: 'Expected at least one row, got none.' };
  const options = { orderMatters: false, numericTolerance: 0, ignoreColumnNames: true };
  if (e.rows) {
    const rows = e.rows.map((r) => r.map((c) => (c === 'NULL' ? null : c)));
    const width = rows[0]?.length ?? actual.columns.length;
    const expected = { columns: Array.from({ length: width }, (_, i) => `column ${i + 1}`), rows };
    const grade = compareResults(expected, { columns: actual.columns, rows: asText(actual.rows) }, options);
    return { pass: grade.pass, explanation: grade.explanation };
  }
  if (e.sameAsSource !== undefined) {
    const expected = await source(e.sameAsSource);
    const grade = compareResults(
      { columns: expected.columns, rows: asText(expected.rows) },
      { columns: actual.columns, rows: asText(actual.rows) },
      options,
    );
    return { pass: grade.pass, explanation: grade.explanation };
  }
  // The schema requires one expectation; a request without one is the API's mistake.
  throw new Error(`check ${check.name} sets no expectation`);
}

/**
 * Runs the checks in order within `deadlineMs` overall (each query has the answer's own timeout
 * too): a check that cannot start in time fails as not run, so a slow work area costs its owner
 * the checks, never the grader's availability. An unreachable database is thrown (a 503).
 */
export async function runChecks(
  checks: CheckSpec[],
  runner: CheckRunner,
  o: { deadlineMs: number; now?: () => number } = { deadlineMs: 20_000 },
): Promise<GradeResponse> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.deadlineMs;
  const outcomes: CheckOutcome[] = [];
  /** The French of an outcome's hint where the platform's words are in it (not run, could not run). */
  const hintsFr = new Map<string, string>();
  for (const check of checks) {
    if (now() > deadline) {
      hintsFr.set(
        check.name,
        `${check.hint} (Non exécutée : les vérifications précédentes ont pris trop de temps.)`,
      );
      outcomes.push({
        name: check.name,
        pass: false,
        hint: `${check.hint} (Not run: the checks before it took too long.)`,
        explanation: 'Not run: the checks before it used up the time allowed for all checks.',
        error: 'Timeout',
      });
      continue;
    }
    let actual: ResultSet;
    try {
      actual = await runner.work(check);
    } catch (err) {
      if (!(err instanceof AnswerError)) throw err;
      if (err.reason === 'Unavailable') throw err;
      // Errors about the candidate's tables (a missing table or column, a wrong type) teach, and
      // name nothing the candidate cannot see: they are shown with the hint.
      hintsFr.set(
        check.name,
        `${check.hint} (La vérification n’a pas pu s’exécuter sur vos tables : ${err.fr})`,
      );
      outcomes.push({
        name: check.name,
        pass: false,
        hint: `${check.hint} (The check could not run on your tables: ${err.message})`,
        explanation: `The check's query failed: ${err.message}`,
        error: err.reason,
      });
      continue;
    }
    const verdict = await evaluate(check, actual, async (sql) => {
      try {
        return await runner.source(sql);
      } catch (err) {
        if (err instanceof AnswerError && err.reason !== 'Unavailable')
          throw new SourceError(check.name, err);
        throw err;
      }
    });
    outcomes.push({
      name: check.name,
      pass: verdict.pass,
      hint: verdict.pass ? 'Passes.' : check.hint,
      explanation: verdict.explanation,
    });
  }
  const failing = outcomes.filter((c) => !c.pass);
  const pass = failing.length === 0;
  const n = outcomes.length;
  // The names first: they survive when a long list of hints is cut to fit the record. The authors'
  // hints are in the template's words, in whichever language the author wrote them.
  const names = failing.map((c) => c.name).join(', ');
  const hints = (fr: boolean) =>
    failing.map((c) => `${c.name}${fr ? ' ' : ''}: ${(fr && hintsFr.get(c.name)) || c.hint}`).join(' ');
  return {
    pass,
    hint: pass
      ? `All ${plural(n, 'check')} pass.`
      : `${failing.length} of ${plural(n, 'check')} fail: ${names}. ${hints(false)}`,
    hintFr: pass
      ? n === 1
        ? 'La vérification réussit.'
        : `Les ${n} vérifications réussissent.`
      : `${failing.length} vérification${failing.length > 1 ? 's' : ''} sur ${n} en échec : ${names}. ${hints(true)}`,
    explanation: outcomes.map((c) => `${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.explanation}`).join('\n'),
    // For a check task these count checks: how many there are, and how many pass.
    expectedRows: outcomes.length,
    actualRows: outcomes.length - failing.length,
    checks: outcomes,
  };
}
