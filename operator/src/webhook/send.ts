import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { addressRefusal, ipLiteral, type TargetPolicy, urlRefusal } from './address-policy.ts';

export interface SendOptions extends TargetPolicy {
  timeoutMs: number;
  /** Bytes of the receiver's answer read at most; the rest is dropped (only the status matters). */
  maxResponseBytes: number;
  /** Tests point names at a local resolver; production uses the system's. */
  lookup?: typeof dnsLookup;
}

export interface SendResult {
  status?: number;
  error?: string;
  ms: number;
}

/**
 * A DNS lookup that refuses forbidden addresses: node:net connects to exactly the address this
 * returns, so the check happens at connect time and a name that resolves to a public address for
 * the check and a private one for the connection (DNS rebinding) cannot slip through. Every
 * address a name resolves to must pass, not only the first.
 */
export function guardedLookup(policy: TargetPolicy, lookup: typeof dnsLookup = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as unknown as LookupAddress[];
      for (const a of list) {
        const refusal = addressRefusal(a.address, policy);
        if (refusal)
          return callback(
            Object.assign(new Error(`${hostname} resolves to ${refusal}`), { code: 'EREFUSED' }),
            '',
            0,
          );
      }
      if (list.length === 0) return callback(new Error(`${hostname} has no address`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/**
 * POSTs one webhook with node:http(s) — whose client never follows redirects — through the
 * guarded lookup (names) or the address check (IP literals, which node:net does not look up),
 * within `timeoutMs` for the whole exchange and reading at most `maxResponseBytes` of the answer.
 * Never throws: every failure is a result, for the delivery log.
 */
export function send(
  target: string,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
): Promise<SendResult> {
  const started = Date.now();
  const done = (r: Omit<SendResult, 'ms'>): SendResult => ({ ...r, ms: Date.now() - started });
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.resolve(done({ error: 'the webhook URL is not a valid URL' }));
  }
  const refusal = urlRefusal(url, opts.allowPrivateTargets);
  if (refusal) return Promise.resolve(done({ error: refusal }));
  const literal = ipLiteral(url);
  if (literal) {
    const r = addressRefusal(literal, opts);
    if (r) return Promise.resolve(done({ error: r }));
  }
  return new Promise((resolve) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          'content-length': Buffer.byteLength(body),
          'user-agent': 'epreuve-webhooks/1',
        },
        lookup: guardedLookup(opts, opts.lookup),
        // A fresh connection each time: a pooled socket would skip the lookup above.
        agent: false,
        signal: AbortSignal.timeout(opts.timeoutMs),
      },
      (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > opts.maxResponseBytes) res.destroy();
        });
        const status = res.statusCode ?? 0;
        const finish = () => {
          if (status >= 300 && status < 400) resolve(done({ status, error: 'redirects are not followed' }));
          else resolve(done({ status }));
        };
        res.on('end', finish);
        res.on('close', finish); // destroyed past the size cap: the status is what counts
        res.on('error', () => {});
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.name === 'AbortError' || err.name === 'TimeoutError'
          ? `no answer within ${opts.timeoutMs} ms`
          : err.message.slice(0, 250);
      resolve(done({ error: why }));
    });
    req.end(body);
  });
}
