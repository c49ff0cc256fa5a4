import { BSON, type Document, type MongoClient } from 'mongodb';

import type { ResultSet } from './compare.ts';
import { AnswerError, RECOVERY_WAIT_MS, retriedWithin } from './sql.ts';

/** Stages an answer may use: they only read. ($out, $merge and server-side JavaScript are refused.) */
const ALLOWED_STAGES = new Set([
  '$match',
  '$group',
  '$sort',
  '$limit',
  '$skip',
  '$project',
  '$unwind',
  '$count',
  '$addFields',
  '$set',
  '$unset',
  '$sortByCount',
  '$bucket',
  '$bucketAuto',
  '$facet',
  '$lookup',
  '$replaceRoot',
  '$replaceWith',
  '$sample',
  '$densify',
  '$fill',
  '$setWindowFields',
  '$graphLookup',
  '$unionWith',
  '$redact',
]);
const FORBIDDEN_OPERATORS = new Set(['$where', '$function', '$accumulator']);

export interface MongoRunOptions {
  timeoutMs?: number;
  docCap?: number;
  maxLength?: number;
  /** Most BSON bytes an answer may return, counted document by document. */
  maxBytes?: number;
}

/**
 * Documents per reply. The driver holds one whole reply in memory (up to 48 MiB), so replies are
 * kept small; each document arrives as its raw BSON bytes (`raw: true`) and is measured before it
 * is deserialized, so one huge document (16 MiB of `$push`ed events) is refused without ever
 * becoming a JavaScript object, and the running total is checked after each. The grader's memory
 * limit is sized above `maxBytes` plus one reply.
 */
export const BATCH_SIZE = 100;

/** Parses and checks a pipeline written as (Extended) JSON; errors are meant for the candidate. */
export function parsePipeline(text: string, maxLength = 20_000): Document[] {
  if (text.length > maxLength)
    throw new AnswerError(
      'TooLong',
      `Your answer is ${text.length.toLocaleString('en')} characters; the limit is ${maxLength.toLocaleString('en')}.`,
      `Votre réponse compte ${text.length.toLocaleString('fr')} caractères ; la limite est de ${maxLength.toLocaleString('fr')}.`,
    );
  if (!text.trim()) throw new AnswerError('Empty', 'Your answer is empty.', 'Votre réponse est vide.');
  let pipeline: unknown;
  try {
    pipeline = BSON.EJSON.parse(text, { relaxed: true });
  } catch (err) {
    throw new AnswerError(
      'SqlError',
      `Your pipeline is not valid JSON (${(err as Error).message}). Write it as JSON, e.g. [{"$match": {"type": "decline"}}].`,
      `Votre pipeline n’est pas du JSON valide (${(err as Error).message}). Écrivez-le en JSON, par exemple [{"$match": {"type": "decline"}}].`,
    );
  }
  if (!Array.isArray(pipeline))
    throw new AnswerError(
      'NotAQuery',
      'An aggregation pipeline is a JSON array of stages, e.g. [{"$match": {…}}, {"$group": {…}}].',
      'Un pipeline d’agrégation est un tableau JSON d’étapes, par exemple [{"$match": {…}}, {"$group": {…}}].',
    );
  pipeline.forEach((stage, i) => {
    const keys = stage && typeof stage === 'object' && !Array.isArray(stage) ? Object.keys(stage) : [];
    if (keys.length !== 1 || !keys[0]!.startsWith('$')) {
      throw new AnswerError(
        'NotAQuery',
        `Stage ${i + 1} must be an object with exactly one $-operator, e.g. {"$match": {…}}.`,
        `L’étape ${i + 1} doit être un objet avec exactement un opérateur $, par exemple {"$match": {…}}.`,
      );
    }
    if (!ALLOWED_STAGES.has(keys[0]!)) {
      throw new AnswerError(
        'Forbidden',
        `Stage ${i + 1} (${keys[0]}) is not allowed: answers may only read data.`,
        `L’étape ${i + 1} (${keys[0]}) n’est pas autorisée : une réponse ne peut que lire des données.`,
      );
    }
  });
  const forbidden = findOperator(pipeline, FORBIDDEN_OPERATORS);
  if (forbidden)
    throw new AnswerError(
      'Forbidden',
      `${forbidden} is not allowed: answers may not run JavaScript on the server.`,
      `${forbidden} n’est pas autorisé : une réponse ne peut pas exécuter de JavaScript sur le serveur.`,
    );
  return pipeline as Document[];
}

function findOperator(value: unknown, names: Set<string>): string | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = findOperator(v, names);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (names.has(k)) return k;
      const found = findOperator(v, names);
      if (found) return found;
    }
  }
  return undefined;
}

/** Documents → rows: `_id` first, then fields in order of first appearance; absent fields are null. */
export function documentsToResultSet(docs: Document[]): ResultSet {
  const columns: string[] = [];
  for (const d of docs) for (const k of Object.keys(d)) if (!columns.includes(k)) columns.push(k);
  columns.sort((a, b) => (a === '_id' ? -1 : b === '_id' ? 1 : 0));
  return { columns, rows: docs.map((d) => columns.map((c) => (c in d ? d[c] : null))) };
}

/** Runs a pipeline as the read-only grader, with a time limit and a document cap. */
export async function runPipeline(
  client: MongoClient,
  database: string,
  collection: string,
  text: string,
  options: MongoRunOptions = {},
): Promise<ResultSet> {
  const { timeoutMs = 5000, docCap = 10_000, maxLength = 20_000, maxBytes = 5 << 20 } = options;
  const pipeline = parsePipeline(text, maxLength);
  const docs: Document[] = [];
  let bytes = 0;
  // maxTimeMS bounds the aggregate command, but FerretDB 1.x applies it to the first batch only:
  // the getMores fetching the rest ran unbounded (red team 6: 150 $addFields over 10 000 documents
  // the candidate inserted held a grade and a slot of the grader's gate half a minute past a 5 s
  // limit). The whole read ends at the deadline: the signal aborts the command in flight and
  // closes its connection.
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    const cursor = client.db(database).collection(collection).aggregate<Uint8Array>(pipeline, {
      maxTimeMS: timeoutMs,
      batchSize: BATCH_SIZE,
      raw: true,
      signal: deadline,
    });
    for await (const raw of cursor) {
      // Measured on the wire bytes, before deserializing: one document over the cap costs nothing more.
      bytes += raw.byteLength;
      if (bytes > maxBytes) {
        await cursor.close();
        const mib = maxBytes >= 1048576;
        const size = mib ? (maxBytes / 1048576).toFixed(0) : String(Math.round(maxBytes / 1024));
        throw new AnswerError(
          'TooLarge',
          `Your pipeline returns more than ${size} ${mib ? 'MiB' : 'KiB'} of data${docs.length === 0 ? ' in its first document' : ''}, the most an answer may return; the answer needs far less.`,
          `Votre pipeline renvoie plus de ${size} ${mib ? 'Mio' : 'Kio'} de données${docs.length === 0 ? ' dès son premier document' : ''}, le maximum pour une réponse ; la réponse en demande bien moins.`,
        );
      }
      // The driver's own defaults (numbers as numbers, no raw buffers): as a non-raw cursor returns.
      docs.push(BSON.deserialize(raw));
      if (docs.length > docCap) {
        await cursor.close();
        throw new AnswerError(
          'TooManyRows',
          `Your pipeline returns more than ${docCap.toLocaleString('en')} documents; the answer needs far fewer.`,
          `Votre pipeline renvoie plus de ${docCap.toLocaleString('fr')} documents ; la réponse en demande bien moins.`,
        );
      }
    }
  } catch (err) {
    if (err instanceof AnswerError) throw err;
    const e = err as { code?: number; message?: string };
    if (e.code === 50 || deadline.aborted)
      throw new AnswerError(
        'Timeout',
        `Your pipeline was stopped after ${timeoutMs / 1000} s.`,
        `Votre pipeline a été arrêté après ${timeoutMs / 1000} s.`,
      );
    if (e.code === 13)
      throw new AnswerError(
        'Forbidden',
        'Permission denied: answers run as a read-only grader.',
        'Permission refusée : les réponses s’exécutent avec un rôle de correction en lecture seule.',
      );
    if (typeof e.code === 'number')
      throw new AnswerError('SqlError', `MongoDB said: ${e.message}.`, `MongoDB a répondu : ${e.message}.`);
    // No server error code while the server still answers: the result could not be read, the
    // answer's doing, so a graded failure (a 503 would give the attempt back: an oracle an answer
    // could choose on a hidden variant). Only a server that does not answer is Unavailable.
    if (await answersAgain(client)) {
      const why = String(e.message ?? err).slice(0, 200);
      throw new AnswerError(
        'SqlError',
        `Your pipeline’s result could not be read (${why}); it counts as a failed attempt.`,
        `Le résultat de votre pipeline n’a pas pu être lu (${why}) ; il compte comme une tentative échouée.`,
      );
    }
    throw new AnswerError(
      'Unavailable',
      'The database connection failed while grading; try again in a moment.',
      'La connexion à la base de données a échoué pendant la correction ; réessayez dans un instant.',
    );
  }
  return documentsToResultSet(docs);
}

/**
 * Whether the server answers a ping again within RECOVERY_WAIT_MS, on the client the pipeline ran
 * on (which reconnects by itself): a server restarted after an answer made it run out of memory is
 * the answer's doing, as on PostgreSQL (sql.ts); one still down after it is Unavailable.
 */
async function answersAgain(client: MongoClient): Promise<boolean> {
  return retriedWithin(RECOVERY_WAIT_MS, () => client.db('admin').command({ ping: 1 }, { timeoutMS: 2000 }));
}
