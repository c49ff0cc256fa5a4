import pg from 'pg';
import type { ResultSet } from './compare.ts';

/**
 * Runs one candidate query safely, as the sandbox's read-only `grader` role:
 * - one statement only (the extended protocol refuses a second one), and only a query: it runs as
 *   `DECLARE … CURSOR FOR <query>`, which accepts SELECT / WITH / VALUES and nothing that writes;
 * - in a READ ONLY transaction that is always rolled back, under statement_timeout and
 *   lock_timeout, with search_path set so `customers` means `retail.customers`;
 * - at most `rowCap` rows and `maxBytes` of data are fetched.
 * Failures come back as AnswerError with a message meant for the candidate.
 */
export interface RunOptions {
  timeoutMs?: number;
  rowCap?: number;
  maxBytes?: number;
  maxLength?: number;
  searchPath?: string;
}

export class AnswerError extends Error {
  readonly reason:
    | 'TooLong'
    | 'Empty'
    | 'NotAQuery'
    | 'Timeout'
    | 'TooManyRows'
    | 'TooLarge'
    | 'Forbidden'
    | 'SqlError'
    | 'Unavailable';
  constructor(reason: AnswerError['reason'], message: string) {
    super(message);
    this.name = 'AnswerError';
    this.reason = reason;
  }
}

/** The candidate's query is appended to this; error positions are shifted back by its length. */
const CURSOR_PREFIX = 'DECLARE epreuve_answer NO SCROLL CURSOR FOR ';

const DEFAULTS = {
  timeoutMs: 5000,
  rowCap: 10_000,
  maxBytes: 5 << 20,
  maxLength: 20_000,
  searchPath: 'retail, work, public',
};

// Dates as written (no local time zone shift), timestamps as ISO strings, bigints as strings.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1082) return (v: string) => v; // date
    if (oid === 1114 || oid === 1184)
      return (v: string) =>
        new Date(v.includes('+') || v.endsWith('Z') || /-\d\d$/.test(v) ? v : `${v}Z`).toISOString();
    return pg.types.getTypeParser(oid, format);
  },
};

/** Strips trailing semicolons and whitespace; refuses empty and oversized answers. */
export function prepareAnswer(sql: string, maxLength = DEFAULTS.maxLength): string {
  if (sql.length > maxLength) {
    throw new AnswerError(
      'TooLong',
      `Your answer is ${sql.length.toLocaleString('en')} characters; the limit is ${maxLength.toLocaleString('en')}.`,
    );
  }
  const withoutComments = sql.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  if (!withoutComments.replace(/[\s;]/g, '')) throw new AnswerError('Empty', 'Your answer is empty.');
  return sql.replace(/[\s;]+$/u, '').trim();
}

export async function runQuery(
  connection: pg.ClientConfig,
  sql: string,
  options: RunOptions = {},
): Promise<ResultSet> {
  const o = { ...DEFAULTS, ...options };
  const query = prepareAnswer(sql, o.maxLength);
  const client = new pg.Client({
    ...connection,
    types,
    statement_timeout: o.timeoutMs + 1000,
    query_timeout: o.timeoutMs + 2000,
    connectionTimeoutMillis: 5000,
  });
  try {
    await client.connect();
  } catch (err) {
    throw new AnswerError(
      'Unavailable',
      `The database is not reachable right now (${(err as Error).message}); try again in a moment.`,
    );
  }
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(o.timeoutMs)}`);
    await client.query('SET LOCAL lock_timeout = 1000');
    await client.query(`SET LOCAL search_path = ${o.searchPath}`);
    await client.query({ text: CURSOR_PREFIX + query, queryMode: 'extended' } as pg.QueryConfig);
    const res = await client.query({ text: `FETCH ${o.rowCap + 1} FROM epreuve_answer`, rowMode: 'array' });
    if (res.rows.length > o.rowCap) {
      throw new AnswerError(
        'TooManyRows',
        `Your query returns more than ${o.rowCap.toLocaleString('en')} rows; the answer needs far fewer. Check your joins and filters.`,
      );
    }
    const bytes = Buffer.byteLength(JSON.stringify(res.rows));
    if (bytes > o.maxBytes) {
      throw new AnswerError(
        'TooLarge',
        `Your query returns ${(bytes / 1048576).toFixed(1)} MiB of data; the limit is ${(o.maxBytes / 1048576).toFixed(0)} MiB.`,
      );
    }
    return { columns: res.fields.map((f) => f.name), rows: res.rows as unknown[][] };
  } catch (err) {
    throw explain(err, o.timeoutMs);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end().catch(() => {});
  }
}

/** Turns a PostgreSQL error into a message for the candidate, without internals. */
function explain(err: unknown, timeoutMs: number): AnswerError {
  if (err instanceof AnswerError) return err;
  const e = err as { code?: string; message?: string; position?: string };
  const msg = e.message ?? String(err);
  switch (e.code) {
    case '57014':
      return new AnswerError(
        'Timeout',
        `Your query was stopped after ${timeoutMs / 1000} s. Answers must finish within that; look for a missing join condition.`,
      );
    case '42501':
      return new AnswerError('Forbidden', `Permission denied: answers run as a read-only grader (${msg}).`);
    case '25006':
      return new AnswerError(
        'Forbidden',
        'Answers may only read data; this statement tries to change something.',
      );
    case '0A000':
      return new AnswerError(
        'NotAQuery',
        'Only a query that reads data can be graded: this one changes data.',
      );
    case '42601':
      if (/multiple commands/.test(msg))
        return new AnswerError('NotAQuery', 'Submit a single statement: your answer contains more than one.');
      // An error at the answer's very first word: it is not a query (DROP, DELETE, SET ROLE, COPY…).
      if (Number(e.position) === CURSOR_PREFIX.length + 1) {
        return new AnswerError(
          'NotAQuery',
          'Only a single SELECT (or WITH … SELECT, or VALUES) query can be graded.',
        );
      }
      return new AnswerError(
        'SqlError',
        `Syntax error: ${msg}${e.position ? ` (at character ${Number(e.position) - CURSOR_PREFIX.length})` : ''}.`,
      );
    default:
      if (e.code && /^[0-9A-Z]{5}$/.test(e.code))
        return new AnswerError('SqlError', `PostgreSQL said: ${msg}.`);
      return new AnswerError(
        'Unavailable',
        'The database connection failed while grading; try again in a moment.',
      );
  }
}
