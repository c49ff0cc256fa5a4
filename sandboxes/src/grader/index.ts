import type { MongoClient } from 'mongodb';
import type pg from 'pg';
import {
  type CompareOptions,
  compareResults,
  type Grade,
  MAX_NESTING,
  type ResultSet,
  UncomparableResult,
} from './compare.ts';
import { type MongoRunOptions, runPipeline } from './mongo.ts';
import { AnswerError, type RunOptions, runQuery } from './sql.ts';

export type { Grade } from './compare.ts';
export { AnswerError } from './sql.ts';

export interface GradeResult extends Grade {
  /** Set when the answer could not be run at all (timeout, not a query, syntax error…). */
  error?: AnswerError['reason'];
}

/** A result the comparison cannot read: the answer's failure, graded like one that cannot run. */
const uncomparable = (err: UncomparableResult) =>
  new AnswerError(
    'TooLarge',
    `Your result cannot be compared: ${err.message}; it counts as a failed attempt.`,
    `Votre résultat ne peut pas être comparé : une valeur s’imbrique sur plus de ${MAX_NESTING} niveaux ; il compte comme une tentative échouée.`,
  );

/** Compares the answer's result with the reference, or explains why the answer could not run. */
async function gradeAgainst(
  expected: ResultSet,
  run: () => Promise<ResultSet>,
  options: CompareOptions,
): Promise<GradeResult> {
  try {
    return compareResults(expected, await run(), options);
  } catch (thrown) {
    const err = thrown instanceof UncomparableResult ? uncomparable(thrown) : thrown;
    if (!(err instanceof AnswerError)) throw err;
    return {
      pass: false,
      explanation: err.message,
      // About the candidate's own query (syntax, time, size): nothing of the reference.
      hint: err.message,
      hintFr: err.fr,
      error: err.reason,
      expectedRows: expected.rows.length,
      actualRows: 0,
    };
  }
}

/**
 * Grades a SQL answer: runs the reference and the answer the same safe way (grader role,
 * read-only, one statement, timeout, row cap) and compares the results. A reference result may be
 * passed in when the caller caches it (the dataset is read-only, so it does not change).
 */
export async function gradeSql(
  grader: pg.ClientConfig,
  exercise: { reference: string; grader: CompareOptions },
  answer: string,
  options: RunOptions & { referenceResult?: ResultSet } = {},
): Promise<GradeResult> {
  const expected =
    options.referenceResult ?? (await runQuery(grader, exercise.reference, { ...options, rowCap: 100_000 }));
  return gradeAgainst(expected, () => runQuery(grader, answer, options), exercise.grader);
}

/** Grades an aggregation pipeline the same way: reference and answer on the same collection, compared. */
export async function gradeMongo(
  client: MongoClient,
  database: string,
  exercise: { reference: string; collection?: string; grader: CompareOptions },
  answer: string,
  options: MongoRunOptions & { referenceResult?: ResultSet } = {},
): Promise<GradeResult> {
  const collection = exercise.collection;
  if (!collection) throw new Error('a Mongo exercise needs a collection');
  const expected =
    options.referenceResult ??
    (await runPipeline(client, database, collection, exercise.reference, { ...options, docCap: 100_000 }));
  return gradeAgainst(
    expected,
    () => runPipeline(client, database, collection, answer, options),
    exercise.grader,
  );
}
