import type { Socket } from 'node:net';
import pg from 'pg';
import type { ResultSet } from './compare.ts';
import { findCandidateCode, GUARD_PREFIX } from './guard.ts';

/**
 * Runs one candidate query safely, as the sandbox's read-only `grader` role:
 * - one statement only (the extended protocol refuses a second one), and only a query: it runs as
 *   `DECLARE … CURSOR FOR <query>`, which accepts SELECT / WITH / VALUES and nothing that writes;
 * - in a READ ONLY transaction that is always rolled back, under statement_timeout and
 *   lock_timeout, with search_path set so `customers` means `retail.customers`;
 * - within one deadline for the whole answer, past which its backend is ended (stopBackend);
 * - at most `rowCap` rows and `maxBytes` of data are fetched.
 * Failures come back as AnswerError with a message meant for the candidate.
 */
export interface RunOptions {
  timeoutMs?: number;
  rowCap?: number;
  maxBytes?: number;
  maxLength?: number;
  searchPath?: string;
  /** Names the session in pg_stat_activity (staff and tests tell answers from references by it). */
  applicationName?: string;
  /**
   * For a check on the candidate's `work`: refuse (Forbidden, naming the object) a query that
   * reads a relation through which the candidate's code would run as the grader (guard.ts).
   */
  refuseCandidateCode?: boolean;
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
  /** The message in French, for a candidate whose page speaks French (English is `message`). */
  readonly fr: string;
  constructor(reason: AnswerError['reason'], message: string, fr?: string) {
    super(message);
    this.name = 'AnswerError';
    this.reason = reason;
    this.fr = fr ?? message;
  }
}

/** The candidate's query is appended to this; error positions are shifted back by its length. */
const CURSOR_PREFIX = 'DECLARE epreuve_answer NO SCROLL CURSOR FOR ';

const DEFAULTS = {
  timeoutMs: 5000,
  rowCap: 10_000,
  maxBytes: 5 << 20,
  maxLength: 20_000,
  // Not `work`: the candidate's own objects there (a function or operator overloading a built-in
  // for their types) must never be picked up by the reference, which runs as the grader. pg_temp
  // last: unlisted, it would be searched first for tables (a grader session cannot make temp
  // tables, being read-only; this holds if that ever changes).
  searchPath: 'retail, public, pg_temp',
  applicationName: 'epreuve-grader',
  refuseCandidateCode: false,
};

// Dates as written (no local time zone shift), timestamps as ISO strings, bigints as strings.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1082) return (v: string) => v; // date
    // Never throws: 'infinity' or a year JavaScript cannot hold stays the server's text. A parser
    // that threw read as a database failure (503, the attempt withdrawn): an oracle an answer
    // could choose on hidden variants.
    if (oid === 1114 || oid === 1184)
      return (v: string) => {
        const d = new Date(v.includes('+') || v.endsWith('Z') || /-\d\d$/.test(v) ? v : `${v}Z`);
        return Number.isNaN(d.getTime()) ? v : d.toISOString();
      };
    return pg.types.getTypeParser(oid, format);
  },
};

/** Strips trailing semicolons and whitespace; refuses empty and oversized answers. */
export function prepareAnswer(sql: string, maxLength = DEFAULTS.maxLength): string {
  if (sql.length > maxLength) {
    throw new AnswerError(
      'TooLong',
      `Your answer is ${sql.length.toLocaleString('en')} characters; the limit is ${maxLength.toLocaleString('en')}.`,
      `Votre réponse compte ${sql.length.toLocaleString('fr')} caractères ; la limite est de ${maxLength.toLocaleString('fr')}.`,
    );
  }
  // PostgreSQL's protocol ends a query at U+0000 and drops the connection on one inside it: a
  // fuzzer's NUL would otherwise read as a database that stopped (503), not as a wrong answer.
  const nul = sql.indexOf('\u0000');
  if (nul !== -1)
    throw new AnswerError(
      'SqlError',
      `Your answer contains a NUL character (U+0000) at position ${nul + 1}; PostgreSQL does not accept it.`,
      `Votre réponse contient un caractère NUL (U+0000) à la position ${nul + 1} ; PostgreSQL ne l’accepte pas.`,
    );
  if (isBlank(sql)) throw new AnswerError('Empty', 'Your answer is empty.', 'Votre réponse est vide.');
  let end = sql.length;
  while (end > 0 && isBlankChar(sql[end - 1] as string)) end--;
  return sql.slice(0, end).trim();
}

const isBlankChar = (c: string) => c === ';' || /\s/u.test(c);

/**
 * Whether an answer holds only whitespace, semicolons and comments, in one pass. Hand-written, as
 * is the trim above, because the regexes they replace backtrack: `/[\s;]+$/` took 1.5 s on 19 998
 * spaces before an `x` (2.7 s with semicolons), a grade server held by one answer.
 */
function isBlank(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    if (sql.startsWith('--', i)) {
      const eol = sql.indexOf('\n', i);
      if (eol === -1) return true;
      i = eol + 1;
    } else if (sql.startsWith('/*', i)) {
      const close = sql.indexOf('*/', i + 2);
      if (close === -1) return false;
      i = close + 2;
    } else if (isBlankChar(sql[i] as string)) i++;
    else return false;
  }
  return true;
}

/** The pg client's socket: the only place where bytes can be counted before a whole row is buffered. */
export const socketOf = (client: pg.Client) =>
  (client as unknown as { connection: { stream: Socket } }).connection.stream;

/** The pid of the client's backend (node-postgres keeps it from BackendKeyData, untyped). */
const backendPid = (client: pg.Client) =>
  (client as unknown as { processID?: number | null }).processID ?? undefined;

/** Rows fetched per round trip: small enough that one batch never holds much more than the cap. */
export const FETCH_BATCH = 500;

/**
 * A connected client for one answer (or console run), its timeouts a little past the answer's so
 * the server's statement_timeout speaks first. An unreachable database is AnswerError Unavailable.
 */
export async function connectForAnswer(
  connection: pg.ClientConfig,
  timeoutMs: number,
  applicationName = DEFAULTS.applicationName,
): Promise<pg.Client> {
  const client = new pg.Client({
    ...connection,
    application_name: applicationName,
    types,
    statement_timeout: timeoutMs + 1000,
    query_timeout: timeoutMs + 2000,
    connectionTimeoutMillis: 5000,
  });
  // A backend that dies (OOM-killed by a huge answer, a restart) makes the client emit 'error';
  // unhandled, that would end the process. The query in flight fails, and its caller explains it.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new AnswerError(
      'Unavailable',
      `The database is not reachable right now (${(err as Error).message}); try again in a moment.`,
      `La base de données est injoignable pour le moment (${(err as Error).message}) ; réessayez dans un instant.`,
    );
  }
  return client;
}

/**
 * Ends the backend of a run past its deadline, from a connection of its own, and resolves once it
 * is gone (or after 2 s). The server's statement_timeout alone does not bound a run: the statement
 * may change it (set_config('statement_timeout', '0', true) in a function or trigger holds for the
 * next FETCH, or for the COMMIT that runs deferred triggers), and a cancel (pg_cancel_backend) can
 * be caught by a PL/pgSQL handler; a terminate cannot. Cutting the socket alone would leave the
 * backend running (and, for the console, committing). A role may end its own backends.
 */
export async function stopBackend(connection: pg.ClientConfig, pid: number | undefined): Promise<void> {
  if (!pid) return;
  const side = new pg.Client({
    ...connection,
    application_name: 'epreuve-stop',
    connectionTimeoutMillis: 2000,
    query_timeout: 2000,
  });
  side.on('error', () => {});
  try {
    await side.connect();
    // Waits up to 1 s for the backend to exit (PostgreSQL 14+).
    await side.query('SELECT pg_terminate_backend($1, 1000)', [pid]);
  } catch {
    // Unreachable, or no slot left under the role's connection limit: the socket is cut anyway.
  } finally {
    await side.end().catch(() => {});
  }
}

/** What pg_terminate_backend (and a server shutting down) ends a session with. */
const ADMIN_SHUTDOWN = '57P01';
/** What every other session is ended with when one backend crashed (killed out of memory, say). */
const CRASH_SHUTDOWN = '57P02';

/**
 * How long a grade waits for a server that stopped answering mid-run to take sessions again. A
 * backend killed out of memory makes PostgreSQL end every session and replay its WAL before it
 * takes new ones ("the database system is in recovery mode", 57P03): read as a database that
 * stopped, an answer that used more memory than the sandbox allows only on a hidden variant got a
 * 503 that gave the attempt back (red team 5: a free yes/no question about the hidden data, 30 a
 * minute). Long enough for a crash restart; a server still down after it is Unavailable.
 */
export const RECOVERY_WAIT_MS = 10_000;

/**
 * Whether the server takes a new session again within `waitMs`: after a session ended with 57P01,
 * it tells an answer that ended its own (`pg_terminate_backend(pg_backend_pid())`, which a role may
 * do to its own backends, and which the deadline above needs) from a server going down; after a
 * lost connection or 57P02, an answer that crashed its backend from a server that stopped. Read as
 * a database that stopped, either was a 503 that withdrew the attempt: a free oracle on hidden
 * variants.
 */
async function answersAgain(connection: pg.ClientConfig): Promise<boolean> {
  return retriedWithin(RECOVERY_WAIT_MS, async () => {
    const probe = new pg.Client({
      ...connection,
      application_name: 'epreuve-probe',
      connectionTimeoutMillis: 2000,
    });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.query('SELECT 1');
    } finally {
      await probe.end().catch(() => {});
    }
  });
}

/** Whether `attempt` succeeds once within `waitMs`, tried every 250 ms (a probe of a recovering server). */
export async function retriedWithin(waitMs: number, attempt: () => Promise<unknown>): Promise<boolean> {
  const until = performance.now() + waitMs;
  for (;;) {
    try {
      await attempt();
      return true;
    } catch {
      if (performance.now() + 250 >= until) return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const unreadable = (err: unknown) => {
  const why = String((err as Error)?.message ?? err).slice(0, 200);
  return new AnswerError(
    'SqlError',
    `Your answer’s result could not be read (${why}); it counts as a failed attempt.`,
    `Le résultat de votre réponse n’a pas pu être lu (${why}) ; il compte comme une tentative échouée.`,
  );
};

const crashed = () =>
  new AnswerError(
    'SqlError',
    'The database restarted while running your answer (it may have used more memory than the sandbox allows); it counts as a failed attempt.',
    'La base de données a redémarré pendant votre réponse (elle a peut-être utilisé plus de mémoire que le bac à sable n’en permet) ; elle compte comme une tentative échouée.',
  );

const endedItself = () =>
  new AnswerError(
    'Forbidden',
    'Your answer’s database session was ended while it ran (an answer may not end sessions); it counts as a failed attempt.',
    'La session de base de données de votre réponse a été close pendant son exécution (une réponse ne peut pas clore de session) ; elle compte comme une tentative échouée.',
  );

/**
 * The deadline of one run: at `ms`, ends its backend (stopBackend), then cuts its socket, so the
 * query in flight fails at once. `fired` says whether it did; `stopped` resolves when it is over.
 */
export function deadlineFor(connection: pg.ClientConfig, client: pg.Client, ms: number) {
  let stopping: Promise<void> | undefined;
  const state = {
    fired: false,
    /** Resolves once a fired deadline has ended the backend. */
    stopped: () => stopping ?? Promise.resolve(),
    clear: () => clearTimeout(timer),
  };
  const timer = setTimeout(() => {
    state.fired = true;
    stopping = stopBackend(connection, backendPid(client)).finally(() => socketOf(client).destroy());
  }, ms);
  return state;
}

export async function runQuery(
  connection: pg.ClientConfig,
  sql: string,
  options: RunOptions = {},
): Promise<ResultSet> {
  const o = { ...DEFAULTS, ...options };
  const query = prepareAnswer(sql, o.maxLength);
  const client = await connectForAnswer(connection, o.timeoutMs, o.applicationName);
  // node-postgres buffers a whole row before handing it over, so a cap checked on rows comes too
  // late for one 500 MB value. Counting the socket's bytes bounds memory to the cap plus one chunk:
  // past the cap, the connection is cut and the answer is refused.
  const socket = socketOf(client);
  let received = 0;
  let budget = Number.POSITIVE_INFINITY;
  let overBudget = false;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received > budget && !overBudget) {
      overBudget = true;
      socket.destroy();
    }
  };
  socket.on('data', count);
  // statement_timeout is per statement, and a cursor is fetched in up to rowCap / 500 statements
  // (a slow view can spend just under the limit in each; a function can turn the timeout off for
  // the next ones): one deadline for the whole answer, which ends its backend.
  const deadline = deadlineFor(connection, client, o.timeoutMs + 1000);
  const tooLarge = () =>
    new AnswerError(
      'TooLarge',
      `Your query returns more than ${(o.maxBytes / 1048576).toFixed(0)} MiB of data, the most an answer may return; the answer needs far less.`,
      `Votre requête renvoie plus de ${(o.maxBytes / 1048576).toFixed(0)} Mio de données, le maximum pour une réponse ; la réponse en demande bien moins.`,
    );
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(o.timeoutMs)}`);
    await client.query('SET LOCAL lock_timeout = 1000');
    await client.query(`SET LOCAL search_path = ${o.searchPath}`);
    // A row-level security policy the candidate wrote on their `work` tables (USING (current_user
    // <> 'grader' OR …)) would show the grader other rows than are there: with row_security off,
    // such a read fails instead of being filtered, so a check fails rather than passes on it.
    await client.query('SET LOCAL row_security = off');
    if (o.refuseCandidateCode) {
      let refusal: Awaited<ReturnType<typeof findCandidateCode>>;
      try {
        refusal = await findCandidateCode(client, query);
      } catch (err) {
        throw explain(err, o.timeoutMs, GUARD_PREFIX.length);
      }
      if (refusal) throw new AnswerError('Forbidden', `${refusal.en}.`, `${refusal.fr}.`);
    }
    await client.query({ text: CURSOR_PREFIX + query, queryMode: 'extended' } as pg.QueryConfig);
    received = 0;
    budget = o.maxBytes;
    const rows: unknown[][] = [];
    let fields: pg.FieldDef[] = [];
    for (;;) {
      const want = Math.min(FETCH_BATCH, o.rowCap + 1 - rows.length);
      const res = await client.query({
        text: `FETCH ${want} FROM epreuve_answer`,
        rowMode: 'array',
      });
      fields = res.fields;
      rows.push(...(res.rows as unknown[][]));
      if (rows.length > o.rowCap) {
        throw new AnswerError(
          'TooManyRows',
          `Your query returns more than ${o.rowCap.toLocaleString('en')} rows; the answer needs far fewer. Check your joins and filters.`,
          `Votre requête renvoie plus de ${o.rowCap.toLocaleString('fr')} lignes ; la réponse en demande bien moins. Vérifiez vos jointures et vos filtres.`,
        );
      }
      if (res.rows.length < want) break; // the cursor is exhausted
    }
    return { columns: fields.map((f) => f.name), rows };
  } catch (err) {
    if (overBudget) throw tooLarge();
    if (deadline.fired) throw explain({ code: '57014' }, o.timeoutMs);
    const code = (err as { code?: string }).code;
    if (code === ADMIN_SHUTDOWN && (await answersAgain(connection))) throw endedItself();
    // No SQLSTATE: the connection broke (its backend was killed), or the result could not be read;
    // 57P02: another backend crashed. With the server taking new sessions again (after its crash
    // recovery), that is the answer's doing and a graded failure, not a 503 that gives the attempt
    // back (which an answer could choose on a hidden variant, as a yes/no question).
    if (code === CRASH_SHUTDOWN && (await answersAgain(connection))) throw crashed();
    if (!code && !(err instanceof AnswerError) && (await answersAgain(connection))) throw unreadable(err);
    throw explain(err, o.timeoutMs);
  } finally {
    deadline.clear();
    await deadline.stopped();
    socket.off('data', count);
    if (!overBudget && !deadline.fired) await client.query('ROLLBACK').catch(() => {});
    await client.end().catch(() => {});
  }
}

/**
 * Turns a PostgreSQL error into a message for the candidate, without internals. `prefix`: the
 * length of what was put before their query (positions are shifted back by it).
 */
export function explain(err: unknown, timeoutMs: number, prefix = CURSOR_PREFIX.length): AnswerError {
  if (err instanceof AnswerError) return err;
  const e = err as { code?: string; message?: string; position?: string };
  const msg = e.message ?? String(err);
  switch (e.code) {
    case '57014':
      return new AnswerError(
        'Timeout',
        `Your query was stopped after ${timeoutMs / 1000} s. Answers must finish within that; look for a missing join condition.`,
        `Votre requête a été arrêtée après ${timeoutMs / 1000} s. Une réponse doit se terminer dans ce délai ; cherchez une condition de jointure manquante.`,
      );
    case '42501':
      return new AnswerError(
        'Forbidden',
        `Permission denied: answers run as a read-only grader (${msg}).`,
        `Permission refusée : les réponses s’exécutent avec un rôle de correction en lecture seule (${msg}).`,
      );
    case '25006':
      return new AnswerError(
        'Forbidden',
        'Answers may only read data; this statement tries to change something.',
        'Une réponse ne peut que lire des données ; cette instruction tente d’en modifier.',
      );
    case '0A000':
      return new AnswerError(
        'NotAQuery',
        'Only a query that reads data can be graded: this one changes data.',
        'Seule une requête qui lit des données peut être corrigée : celle-ci en modifie.',
      );
    case '42601':
      if (/multiple commands/.test(msg))
        return new AnswerError(
          'NotAQuery',
          'Submit a single statement: your answer contains more than one.',
          'Soumettez une seule instruction : votre réponse en contient plusieurs.',
        );
      // An error at the answer's very first word: it is not a query (DROP, DELETE, SET ROLE, COPY…).
      if (Number(e.position) === prefix + 1) {
        return new AnswerError(
          'NotAQuery',
          'Only a single SELECT (or WITH … SELECT, or VALUES) query can be graded.',
          'Seule une requête SELECT (ou WITH … SELECT, ou VALUES) peut être corrigée.',
        );
      }
      return new AnswerError(
        'SqlError',
        `Syntax error: ${msg}${e.position ? ` (at character ${Number(e.position) - prefix})` : ''}.`,
        `Erreur de syntaxe : ${msg}${e.position ? ` (au caractère ${Number(e.position) - prefix})` : ''}.`,
      );
    default:
      // The server went away mid-answer (killed, out of memory, restarting): not the answer's fault.
      if (e.code && /^(57P0[1-3]|08...)$/.test(e.code))
        return new AnswerError(
          'Unavailable',
          'The database stopped while running your answer (it may have run out of memory); try again in a moment.',
          'La base de données s’est arrêtée pendant votre réponse (mémoire épuisée, peut-être) ; réessayez dans un instant.',
        );
      if (e.code && /^[0-9A-Z]{5}$/.test(e.code))
        return new AnswerError('SqlError', `PostgreSQL said: ${msg}.`, `PostgreSQL a répondu : ${msg}.`);
      return new AnswerError(
        'Unavailable',
        'The database connection failed while grading; try again in a moment.',
        'La connexion à la base de données a échoué pendant la correction ; réessayez dans un instant.',
      );
  }
}
