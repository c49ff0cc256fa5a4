/**
 * When a MongoDB or data API connection through the gateway becomes the candidate's own: only once
 * the sandbox has accepted a credential. Until then it is a stranger's as much as anyone's — a
 * MongoDB server answers `hello` and an HTTP server answers 401 to anybody — so it must not take
 * the candidate's slots nor reach their integrity signals (the first gateway counted a connection
 * as soon as the sandbox answered anything, and strangers filled both). PostgreSQL's AuthenticationOk
 * is followed by `PostgresStreamWatcher` (preamble.ts). These watchers only run before that moment:
 * once authenticated, the gateway stops feeding them, so the data path stays a byte count.
 */
import { BSON } from 'bson';

export interface LoginWatcher {
  /** The sandbox accepted a credential on this connection. */
  readonly authenticated: boolean;
  /** Client→sandbox bytes (only the data API reads them). */
  fromClient(chunk: Buffer): void;
  /** Sandbox→client bytes. */
  fromSandbox(chunk: Buffer): void;
}

/** The watcher for a sandbox kind other than PostgreSQL; an unknown kind never authenticates. */
export function loginWatcher(kind: string): LoginWatcher {
  if (kind === 'mongo') return new MongoLoginWatcher();
  if (kind === 'dataApi') return new HttpLoginWatcher();
  return { authenticated: false, fromClient: () => {}, fromSandbox: () => {} };
}

const OP_REPLY = 1;
const OP_MSG = 2013;
/** Login replies are small; a larger message before login is skipped, never buffered. */
const MAX_LOGIN_MESSAGE = 64 * 1024;

/**
 * Reads the server's replies (hand-written framing: the `mongodb` driver has no reader for a
 * proxied stream; the `bson` library decodes each reply) and sets `authenticated` when one ends a
 * SASL conversation successfully: `{conversationId, done: true, ok: 1}` answers `saslStart` /
 * `saslContinue` only, and `speculativeAuthenticate: {done: true}` a one-step login in `hello`.
 * A server without authentication never says so: its connections stay unauthenticated.
 */
export class MongoLoginWatcher implements LoginWatcher {
  authenticated = false;
  private message = Buffer.alloc(0);
  private skip = 0;
  /** The stream is not MongoDB's wire protocol: nothing more is read from it. */
  private lost = false;

  fromClient(): void {}

  fromSandbox(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.authenticated && !this.lost) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      const length = this.message.length >= 4 ? this.message.readInt32LE(0) : 4;
      const take = chunk.subarray(offset, offset + length - this.message.length);
      this.message = Buffer.concat([this.message, take]);
      offset += take.length;
      if (this.message.length < 4) continue;
      const total = this.message.readInt32LE(0);
      if (total < 16) {
        this.lost = true;
        return;
      }
      if (total > MAX_LOGIN_MESSAGE) {
        this.skip = total - this.message.length;
        this.message = Buffer.alloc(0);
        continue;
      }
      if (this.message.length < total) continue;
      this.authenticated = isLoginDone(this.message);
      this.message = Buffer.alloc(0);
    }
  }
}

/** The reply document of one whole message (OP_MSG's body section, OP_REPLY's first document). */
function replyDocument(message: Buffer): Buffer | undefined {
  const opCode = message.readInt32LE(12);
  // OP_MSG: header (16), flags (4), then sections; the body is the kind-0 section.
  let at = opCode === OP_MSG ? 20 : opCode === OP_REPLY ? 36 : -1;
  if (at < 0) return undefined;
  if (opCode === OP_MSG) {
    while (at < message.length && message[at] !== 0) {
      if (at + 5 > message.length) return undefined;
      at += 1 + message.readInt32LE(at + 1); // a kind-1 sequence: its size counts itself
    }
    at += 1;
  }
  if (at + 4 > message.length) return undefined;
  const size = message.readInt32LE(at);
  return size >= 5 && at + size <= message.length ? message.subarray(at, at + size) : undefined;
}

function isLoginDone(message: Buffer): boolean {
  const bytes = replyDocument(message);
  if (!bytes) return false;
  let reply: Record<string, unknown>;
  try {
    reply = BSON.deserialize(bytes);
  } catch {
    return false;
  }
  if (Number(reply.ok) !== 1) return false;
  if (reply.done === true && 'conversationId' in reply) return true;
  const speculative = reply.speculativeAuthenticate as { done?: unknown } | undefined;
  return speculative?.done === true;
}

/** Status codes that say the credential was not accepted (429: the data API's wrong-key limit). */
const NOT_ACCEPTED = new Set([401, 403, 429]);
/** A request head longer than this is not the data API's client: it never counts. */
const MAX_HEAD = 8 * 1024;

/**
 * The data API: the connection's first request carries a credential (`X-API-Key` or
 * `Authorization`) to its authenticated routes (`/v1/…`; `/healthz` or `/openapi.json` answer
 * anyone, whatever key), and the answer is not a refusal (401, 403, 429). Only the first exchange
 * is read (pipelining aside, clients send their key on every request).
 */
export class HttpLoginWatcher implements LoginWatcher {
  authenticated = false;
  private head = '';
  private credentialed?: boolean;
  private status = '';
  private decided = false;

  fromClient(chunk: Buffer): void {
    if (this.credentialed !== undefined) return;
    this.head += chunk.toString('latin1', 0, Math.min(chunk.length, MAX_HEAD - this.head.length));
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0 && this.head.length < MAX_HEAD) return;
    this.credentialed = end >= 0 && carriesCredential(this.head.slice(0, end));
    this.head = '';
  }

  fromSandbox(chunk: Buffer): void {
    if (this.decided) return;
    this.status += chunk.toString('latin1', 0, Math.min(chunk.length, 64 - this.status.length));
    if (!this.status.includes('\r\n') && this.status.length < 64) return;
    this.decided = true;
    const code = /^HTTP\/1\.[01] (\d{3}) /.exec(this.status)?.[1];
    this.authenticated = this.credentialed === true && code !== undefined && !NOT_ACCEPTED.has(Number(code));
  }
}

function carriesCredential(head: string): boolean {
  const [requestLine = '', ...headers] = head.split('\r\n');
  if (!/^[A-Z]+ \/v1\//.test(requestLine)) return false;
  return headers.some((line) => /^(x-api-key|authorization)[ \t]*:[ \t]*\S/i.test(line));
}
