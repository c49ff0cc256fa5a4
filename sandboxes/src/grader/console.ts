import type { ConsoleResponse } from '@epreuve/crds';
import { BSON, type Document, type MongoClient } from 'mongodb';
import type pg from 'pg';
import { BATCH_SIZE, documentsToResultSet, parsePipeline } from './mongo.ts';
import { AnswerError, connectForAnswer, deadlineFor, FETCH_BATCH, prepareAnswer, socketOf } from './sql.ts';

/**
 * The console: a statement a candidate runs from their page, as their own database user — so it
 * may write their `work` schema and nothing the role may not (the graded data stays read-only to
 * it, the hidden variants and the grader store out of its reach) — under grading's limits: one
 * statement, a statement timeout, a row cap (here a cut, said with `truncated`, not a refusal) and
 * the byte budget that bounds this pod's memory. The candidate can run the same statement with
 * psql through the gateway: the limits protect the grader pod, the role protects the data.
 */
export interface ConsoleLimits {
  timeoutMs: number;
  rowCap: number;
  maxBytes: number;
}

/** A failed run: the reason and, when PostgreSQL gave one, the 1-based character it points at. */
export class ConsoleError extends AnswerError {
  readonly position?: number;
  constructor(reason: AnswerError['reason'], message: string, position?: number, fr?: string) {
    super(reason, message, fr);
    this.name = 'ConsoleError';
    this.position = position;
  }
}

/** A query is tried as a cursor first (fetched in batches, cut at the cap); this prefixes it. */
const CURSOR_PREFIX = 'DECLARE epreuve_console NO SCROLL CURSOR FOR ';

/**
 * PostgreSQL counts an error's position in characters (code points); the page's textarea indexes
 * UTF-16 units. Returns the 1-based UTF-16 position of code point `position` of `text` (just past
 * its end for a position past it).
 */
export function utf16Position(text: string, position: number): number {
  let units = 0;
  let points = 0;
  for (const ch of text) {
    if (++points >= position) return units + 1;
    units += ch.length;
  }
  return units + 1; // at the end of the text ("syntax error at end of input")
}

/**
 * The statement as run and how to map a position in it back to the candidate's text: prepareAnswer
 * trims leading whitespace, which the page still shows.
 */
export function prepareStatement(sql: string, maxLength: number): { statement: string; lead: number } {
  let statement: string;
  try {
    statement = prepareAnswer(sql, maxLength);
  } catch (err) {
    if (err instanceof AnswerError && err.reason === 'Empty')
      throw new ConsoleError(
        'Empty',
        'Nothing to run: write a statement first.',
        undefined,
        'Rien à exécuter : écrivez d’abord une instruction.',
      );
    throw err;
  }
  return { statement, lead: sql.length - sql.trimStart().length };
}

/**
 * Most bytes of JSON the rows of one console reply may take. The byte cap counts what the database
 * sends; as JSON a value can grow six-fold (a control character becomes \u0001), and the reply goes
 * through the API, which every candidate shares.
 */
export const MAX_CONSOLE_JSON = 2 << 20;

/**
 * The rows that fit in `maxJson` bytes of JSON, and whether some were cut. Refuses a result whose
 * first row alone is larger: an empty table would say nothing of why.
 */
export function fitJson(rows: unknown[][], maxJson = MAX_CONSOLE_JSON): { rows: unknown[][]; cut: boolean } {
  let size = 2;
  for (let i = 0; i < rows.length; i++) {
    size += Buffer.byteLength(JSON.stringify(rows[i])) + 1;
    if (size > maxJson) {
      if (i === 0)
        throw new ConsoleError(
          'TooLarge',
          `The first row alone is more than ${maxJson >> 20} MiB as JSON, the most the console shows; select fewer or shorter columns.`,
          undefined,
          `La première ligne seule dépasse ${maxJson >> 20} Mio en JSON, le maximum qu’affiche la console ; sélectionnez moins de colonnes, ou plus courtes.`,
        );
      return { rows: rows.slice(0, i), cut: true };
    }
  }
  return { rows, cut: false };
}

/** A value as JSON can carry it: bytea as PostgreSQL's hex text, the rest as node-postgres parsed it. */
export function jsonCell(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  return v;
}

/** Runs one SQL statement as the candidate; writes are committed when it runs to the end. */
export async function runConsoleSql(
  connection: pg.ClientConfig,
  sql: string,
  limits: ConsoleLimits,
): Promise<ConsoleResponse> {
  const { statement, lead } = prepareStatement(sql, 20_000);
  const started = performance.now();
  const client = await connectForAnswer(connection, limits.timeoutMs, 'epreuve-console');
  // The statement_timeout set below is the statement's to change (set_config in a trigger holds
  // for the COMMIT, whose deferred triggers then run untimed): one deadline for the whole run,
  // which ends the backend, so nothing runs on (nor commits) after the limit.
  const deadline = deadlineFor(connection, client, limits.timeoutMs + 1000);
  // What PostgreSQL says without failing (a GRANT that granted nothing, a table that did not exist).
  const notices: string[] = [];
  client.on('notice', (n) => {
    if (notices.length < 10) notices.push(`${n.severity ?? 'NOTICE'}: ${n.message}`.slice(0, 1000));
  });
  // The grader's socket budget (sql.ts): past maxBytes the connection is cut, so one huge value
  // never sits whole in this pod's memory. The transaction dies with it: nothing is kept.
  const socket = socketOf(client);
  let received = 0;
  let overBudget = false;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limits.maxBytes && !overBudget) {
      overBudget = true;
      socket.destroy();
    }
  };
  let inCursor = false;
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(limits.timeoutMs)}`);
    await client.query('SET LOCAL lock_timeout = 1000');
    await client.query('SAVEPOINT epreuve_console');
    socket.on('data', count);
    let result: Omit<ConsoleResponse, 'durationMs'>;
    try {
      inCursor = true;
      await client.query({ text: CURSOR_PREFIX + statement, queryMode: 'extended' } as pg.QueryConfig);
      result = await fetchCursor(client, limits.rowCap);
    } catch (err) {
      // Not a query a cursor takes (a write, DDL, INSERT … RETURNING, a data-modifying WITH):
      // run it as it is. Any other failure is the statement's own.
      if (overBudget || !notACursorQuery(err)) throw err;
      inCursor = false;
      await client.query('ROLLBACK TO SAVEPOINT epreuve_console');
      const res = await client.query({
        text: statement,
        rowMode: 'array',
        queryMode: 'extended',
      } as pg.QueryConfig);
      const rows = (res.rows ?? []) as unknown[][];
      const fitted = fitJson(rows.slice(0, limits.rowCap).map((r) => r.map(jsonCell)));
      result = {
        columns: (res.fields ?? []).map((f) => f.name),
        rows: fitted.rows,
        // Rows returned, or rows changed (CREATE TABLE AS reports its rows as SELECT n, with no columns).
        rowCount: res.fields?.length ? rows.length : (res.rowCount ?? 0),
        truncated: rows.length > limits.rowCap || fitted.cut,
        command: res.command ?? '',
      };
    }
    await client.query('COMMIT');
    return {
      ...result,
      durationMs: Math.round(performance.now() - started),
      ...(notices.length > 0 && { notices: [...notices] }),
    };
  } catch (caught) {
    // Past the deadline the run failed because its backend was ended: a timeout, said as one.
    const err = deadline.fired ? { code: '57014' } : caught;
    if (overBudget)
      throw new ConsoleError(
        'TooLarge',
        `The result is more than ${(limits.maxBytes / 1048576).toFixed(0)} MiB, the most the console returns; nothing this statement changed was kept. Select fewer columns or add LIMIT.`,
      );
    throw explainConsole(err, limits.timeoutMs, inCursor ? CURSOR_PREFIX.length : 0, statement, lead);
  } finally {
    deadline.clear();
    await deadline.stopped();
    socket.off('data', count);
    if (!overBudget && !deadline.fired) await client.query('ROLLBACK').catch(() => {});
    await client.end().catch(() => {});
  }
}

/** Fetches the cursor in batches up to the cap plus one row (to know there were more). */
async function fetchCursor(client: pg.Client, rowCap: number): Promise<Omit<ConsoleResponse, 'durationMs'>> {
  const rows: unknown[][] = [];
  let fields: pg.FieldDef[] = [];
  for (;;) {
    const want = Math.min(FETCH_BATCH, rowCap + 1 - rows.length);
    const res = await client.query({ text: `FETCH ${want} FROM epreuve_console`, rowMode: 'array' });
    fields = res.fields;
    rows.push(...(res.rows as unknown[][]));
    if (rows.length > rowCap || res.rows.length < want) break;
  }
  await client.query('CLOSE epreuve_console');
  const fitted = fitJson(rows.slice(0, rowCap).map((r) => r.map(jsonCell)));
  return {
    columns: fields.map((f) => f.name),
    rows: fitted.rows,
    rowCount: fitted.rows.length,
    truncated: rows.length > rowCap || fitted.cut,
    command: 'SELECT',
  };
}

/** DECLARE refused the statement for what it is (not a SELECT/VALUES), not for an error in it. */
function notACursorQuery(err: unknown): boolean {
  const e = err as { code?: string; position?: string; message?: string };
  if (e.code === '42601') return Number(e.position) === CURSOR_PREFIX.length + 1;
  // A data-modifying WITH, or a statement DECLARE does not support.
  return e.code === '0A000';
}

/** A PostgreSQL error, said for the candidate with the position in their own text. */
export function explainConsole(
  err: unknown,
  timeoutMs: number,
  prefix: number,
  statement: string,
  lead: number,
): ConsoleError {
  if (err instanceof ConsoleError) return err;
  if (err instanceof AnswerError) return new ConsoleError(err.reason, err.message, undefined, err.fr);
  const e = err as { code?: string; message?: string; position?: string };
  const msg = e.message ?? String(err);
  const at = Number(e.position) - prefix;
  const position = at >= 1 ? lead + utf16Position(statement, at) : undefined;
  if (e.code === '57014')
    return new ConsoleError(
      'Timeout',
      `The statement was stopped after ${timeoutMs / 1000} s, the console's (and grading's) limit; nothing it changed was kept.`,
      undefined,
      `L’instruction a été arrêtée après ${timeoutMs / 1000} s, la limite de la console (et de la correction) ; rien de ce qu’elle a modifié n’a été gardé.`,
    );
  if (e.code === '42501')
    return new ConsoleError(
      'Forbidden',
      `Permission denied: ${msg}.`,
      position,
      `Permission refusée : ${msg}.`,
    );
  if (e.code === '42601' && /multiple commands/.test(msg))
    return new ConsoleError(
      'NotAQuery',
      'Run one statement at a time.',
      undefined,
      'Exécutez une instruction à la fois.',
    );
  if (e.code && /^(57P0[1-3]|08...)$/.test(e.code))
    return new ConsoleError(
      'Unavailable',
      'The database stopped while running this statement (it may have run out of memory); try again in a moment.',
      undefined,
      'La base de données s’est arrêtée pendant cette instruction (mémoire épuisée, peut-être) ; réessayez dans un instant.',
    );
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) return new ConsoleError('SqlError', `${msg}.`, position);
  return new ConsoleError(
    'Unavailable',
    'The database connection failed; try again in a moment.',
    undefined,
    'La connexion à la base de données a échoué ; réessayez dans un instant.',
  );
}

/**
 * Runs a read-only pipeline (mongo.ts's stage checks) as the candidate on their database: the
 * documents are measured as raw BSON before they are decoded, as grading does, and cut at the cap.
 */
export async function runConsolePipeline(
  client: MongoClient,
  database: string,
  collection: string,
  text: string,
  limits: ConsoleLimits,
): Promise<ConsoleResponse> {
  let pipeline: Document[];
  try {
    pipeline = parsePipeline(text, 20_000);
  } catch (err) {
    if (err instanceof AnswerError && err.reason === 'Empty')
      throw new ConsoleError(
        'Empty',
        'Nothing to run: write a pipeline first.',
        undefined,
        'Rien à exécuter : écrivez d’abord un pipeline.',
      );
    if (err instanceof AnswerError && err.reason === 'Forbidden')
      throw new ConsoleError(
        'Forbidden',
        err.message.replace('answers may', 'the console may'),
        undefined,
        err.fr.replace('une réponse ne peut', 'la console ne peut'),
      );
    throw err;
  }
  const started = performance.now();
  const docs: Document[] = [];
  let bytes = 0;
  let truncated = false;
  try {
    const cursor = client
      .db(database)
      .collection(collection)
      .aggregate<Uint8Array>(pipeline, { maxTimeMS: limits.timeoutMs, batchSize: BATCH_SIZE, raw: true });
    for await (const raw of cursor) {
      bytes += raw.byteLength;
      if (bytes > limits.maxBytes) {
        await cursor.close();
        throw new ConsoleError(
          'TooLarge',
          `The result is more than ${(limits.maxBytes / 1048576).toFixed(0)} MiB, the most the console returns. Add a $project or a $limit.`,
        );
      }
      if (docs.length === limits.rowCap) {
        truncated = true;
        await cursor.close();
        break;
      }
      docs.push(BSON.deserialize(raw));
    }
  } catch (err) {
    if (err instanceof AnswerError) throw err;
    const e = err as { code?: number; message?: string };
    if (e.code === 50)
      throw new ConsoleError('Timeout', `The pipeline was stopped after ${limits.timeoutMs / 1000} s.`);
    if (e.code === 13) throw new ConsoleError('Forbidden', `Permission denied: ${e.message}.`);
    if (typeof e.code === 'number') throw new ConsoleError('SqlError', `MongoDB said: ${e.message}.`);
    throw new ConsoleError('Unavailable', 'The database connection failed; try again in a moment.');
  }
  const set = documentsToResultSet(docs);
  // ObjectIds, dates and the like as relaxed Extended JSON, the form mongosh users know.
  const fitted = fitJson(set.rows.map((r) => r.map((v) => BSON.EJSON.serialize({ v }, { relaxed: true }).v)));
  return {
    columns: set.columns,
    rows: fitted.rows,
    rowCount: fitted.rows.length,
    truncated: truncated || fitted.cut,
    command: 'aggregate',
    durationMs: Math.round(performance.now() - started),
  };
}
