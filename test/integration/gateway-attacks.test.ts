import { execFile, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { type Assessment, KINDS, newHostKey, sandboxHostLabel, shortHash } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { BSON } from 'mongodb';
import PgLib from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { DataApiProcess } from '../harness/data-api.ts';
import { assessmentObject } from '../harness/fixtures.ts';
import { GatewayProcess, wildcardCertificate } from '../harness/gateway.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';

/**
 * The sandbox gateway under attack, as strangers on the internet reach it: real sockets from their
 * own loopback addresses (127.0.0.x) against the real gateway process, while a real candidate
 * (127.0.0.1, real `psql`) works. Each case fails without its defence: the GSSENC flood grew the
 * old gateway's memory without bound, silent TLS sockets took the candidate's own slots, and open
 * connections outlived the assessment. Strangers without credentials who got an answer from a
 * MongoDB or the data API (a `hello`, a 401 kept alive) took the candidate's slots and wrote their
 * addresses into the candidate's integrity signals, and strangers' silent logins evicted the
 * candidate's own login in progress.
 */
const kubeconfig = inject('kubeconfig');
const pg = inject('postgres');
const mongoUrl = new URL(inject('mongoUrl'));
const API_KEY = 'gwa-test-api-key-7f3c1b';
const dataApi = new DataApiProcess();
const DOMAIN = 'attack.test';
const tls = wildcardCertificate(DOMAIN);
const gateway = new GatewayProcess();
let team: string;
const run = promisify(execFile);

/** Each assessment's host key, drawn as the operator draws it (and written into its status). */
const keys = new Map<string, string>();
const keyOf = (assessment: string) => {
  if (!keys.has(assessment)) keys.set(assessment, newHostKey());
  return keys.get(assessment)!;
};
const host = (assessment: string, sandbox = 'warehouse') =>
  `${sandboxHostLabel(keyOf(assessment), sandbox)}.${DOMAIN}`;
const conninfo = (name: string) =>
  `host=${name} hostaddr=127.0.0.1 port=${gateway.port} user=${pg.user} dbname=postgres sslmode=require`;

async function psql(name: string, sql = 'select 40 + 2') {
  const started = Date.now();
  try {
    const { stdout } = await run('psql', [conninfo(name), '-Atc', sql], {
      env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: '10' },
    });
    return { code: 0, out: stdout.trim(), err: '', ms: Date.now() - started };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout, err: err.stderr, ms: Date.now() - started };
  }
}

/** A raw TCP socket from a stranger's own address; resolves when it is connected. */
function stranger(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: gateway.port, localAddress: address });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
    // Read what the gateway answers, so its FIN is seen and 'close' fires.
    socket.resume();
  });
}
const closed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('error', () => {});
    socket.once('close', () => resolve());
  });

const GSSENC = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);

async function started(name: string, more: object[] = []) {
  const client = kube(kubeconfig);
  await client.create(assessmentObject(team, name));
  const now = Date.now();
  await client.mergePatch(
    KINDS.Assessment,
    team,
    name,
    {
      status: {
        phase: 'Ready',
        hostKey: keyOf(name),
        startedAt: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
        expiresAt: new Date(now + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        sandboxes: [
          { name: 'warehouse', kind: 'postgres', ready: true, host: '127.0.0.1', port: pg.port },
          ...more,
        ],
      },
    },
    'status',
  );
}

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'team-gwa');
  await dataApi.start({ API_KEY });
  await Promise.all(['target', 'revoked-live', 'ending-live', 'crowded'].map((name) => started(name)));
  await started('framed', [
    { name: 'events', kind: 'mongo', ready: true, host: mongoUrl.hostname, port: Number(mongoUrl.port) },
    {
      name: 'source',
      kind: 'dataApi',
      ready: true,
      host: '127.0.0.1',
      port: Number(new URL(dataApi.url).port),
    },
  ]);
  await gateway.start(kubeconfig, DOMAIN, tls, {
    EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS: '3',
    EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS: '200',
    EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: '2',
    EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX: '3',
    EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: '12',
    EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT: '60',
    EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS: '4',
    EPREUVE_GATEWAY_RECHECK_MS: '500',
  });
  expect((await psql(host('target'))).out).toBe('42');
}, 120_000);

afterAll(async () => {
  gateway.stop();
  await dataApi.stop();
});

describe('a gateway strangers cannot hurt', () => {
  // The old names were `<sandbox>-<8 characters of sha256(team/assessment)>`: anyone knowing the
  // team and the assessment reached the candidate's login prompt.
  it('a stranger who knows the team and the assessment cannot compute a name that is served', async () => {
    const derived = `warehouse-${shortHash(`${team}/target`, 8)}.${DOMAIN}`;
    const guess = await psql(derived);
    expect(guess.err).toMatch(/FATAL: +no sandbox is open under this name/);
    expect(guess.out).toBe('');
    // The candidate's own name, with the key the operator drew, is served.
    expect((await psql(host('target'))).out).toBe('42');
  });

  it('a 64 MiB GSSENC stream is cut on its second request: memory stays flat, the candidate connects', async () => {
    const before = gateway.rss();
    const socket = await stranger('127.0.0.2');
    const chunk = Buffer.concat(Array.from({ length: 8192 }, () => GSSENC)); // 64 KiB
    let sent = 0;
    const done = closed(socket);
    while (sent < 64 * 1024 * 1024 && !socket.destroyed) {
      if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), done]);
      sent += chunk.length;
    }
    await done;
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    const candidate = await psql(host('target'));
    expect(candidate.out).toBe('42');
    expect(gateway.rss() - before).toBeLessThan(32 * 1024 * 1024);
    expect(await gateway.metrics()).toMatch(
      /epreuve_gateway_connections_total\{kind="unknown",result="refused"\} [1-9]/,
    );
  });

  it('random bytes, a truncated ClientHello, an oversized ClientHello and a trickle all end by the deadline', async () => {
    const t0 = Date.now();
    const random = await stranger('127.0.0.3');
    random.write(Buffer.from('\x00\x00\x00\x09\xde\xad\xbe\xef\x01', 'latin1'));
    const truncated = await stranger('127.0.0.3');
    truncated.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])); // promises 512 bytes, sends 2
    const oversized = await stranger('127.0.0.3');
    const record = Buffer.alloc(5 + 65_000, 0x41);
    record.set([0x16, 0x03, 0x01, 0xfd, 0xe8]); // a 65 000-byte record: over TLS's 16 KiB limit
    oversized.write(record);
    const trickle = await stranger('127.0.0.3');
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    let i = 0;
    // One byte every 300 ms: an idle timeout would never fire; the absolute deadline does.
    const timer = setInterval(() => {
      if (!trickle.destroyed) trickle.write(i < ssl.length ? ssl.subarray(i, i + 1) : Buffer.from([0x16]));
      i += 1;
    }, 300);
    await Promise.all([random, truncated, oversized, trickle].map(closed));
    clearInterval(timer);
    expect(Date.now() - t0).toBeLessThan(4_000 + 2_000);
    expect(random.bytesRead + oversized.bytesRead).toBeLessThan(256);
  });

  it('silent TLS sockets to a sandbox never take the candidate’s own slots (the old gateway counted them)', async () => {
    const name = host('target');
    const silent = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<Socket>((resolve, reject) => {
            void stranger('127.0.0.4').then((raw) => {
              const socket = tlsConnect({ socket: raw, servername: name, rejectUnauthorized: false });
              socket.once('secureConnect', () => resolve(socket));
              socket.once('error', () => {});
              socket.resume();
            }, reject);
          }),
      ),
    );
    await sleep(200);
    // The cap is 2 logged-in connections; 6 silent ones are pending (at most 3 kept), not counted.
    const candidate = await psql(name);
    expect(candidate.err).toBe('');
    expect(candidate.out).toBe('42');
    const evicted = silent.filter((s) => s.destroyed || s.readableEnded).length;
    expect(evicted).toBeGreaterThanOrEqual(3);
    for (const socket of silent) socket.destroy();
  });

  it('caps connections per client address, and a real candidate connects during 1 000 idle connections', async () => {
    const idle: Socket[] = [];
    const refused: Socket[] = [];
    // 1 000 idle connections from 20 addresses (50 each, under the per-client cap of 60)…
    for (let a = 0; a < 20; a++) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => stranger(`127.0.1.${a + 1}`)));
      idle.push(...batch);
    }
    // …and one address that tries 70: the connections beyond 60 are closed at once.
    const greedy = await Promise.all(Array.from({ length: 70 }, () => stranger('127.0.2.1')));
    await sleep(300);
    refused.push(...greedy.filter((s) => s.destroyed || s.readableEnded));
    const during = await psql(host('target'));
    const health = Date.now();
    const ready = await fetch(`http://127.0.0.1:${gateway.metricsPort}/healthz`);
    const healthMs = Date.now() - health;
    expect(during.out).toBe('42');
    expect(during.ms).toBeLessThan(2_000);
    expect(ready.status).toBe(200);
    expect(healthMs).toBeLessThan(500);
    expect(refused.length).toBe(10);
    expect(idle.filter((s) => s.destroyed).length).toBe(0);
    expect(await gateway.metrics()).toMatch(
      /epreuve_gateway_connections_total\{kind="unknown",result="client_limit"\} 10/,
    );
    // Idle strangers are gone by the handshake deadline.
    await Promise.all(idle.map(closed));
    for (const socket of greedy) socket.destroy();
    expect(gateway.alive).toBe(true);
  }, 60_000);
});

/** A TLS connection from a stranger's own address to `servername`; resolves once TLS is up. */
function tlsFrom(address: string, servername: string, alpn?: string[]): Promise<TLSSocket> {
  return stranger(address).then(
    (raw) =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({
          socket: raw,
          servername,
          rejectUnauthorized: false,
          ALPNProtocols: alpn,
        });
        socket.once('secureConnect', () => resolve(socket));
        socket.once('error', reject);
      }),
  );
}

/** MongoDB's OP_MSG `{hello: 1}`: answered by any MongoDB server before authentication. */
function helloMessage(id: number): Buffer {
  const doc = BSON.serialize({ hello: 1, $db: 'admin' });
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + 4 + 1 + doc.length, 0);
  header.writeInt32LE(id, 4);
  header.writeInt32LE(2013, 12); // OP_MSG
  return Buffer.concat([header, Buffer.alloc(4), Buffer.from([0]), doc]);
}

/** Sends `request` and resolves with the first bytes answered ('' once closed or after 3 s). */
function ask(socket: TLSSocket, request: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (b: Buffer) => resolve(b.toString('latin1')));
    socket.once('close', () => resolve(''));
    socket.on('error', () => {});
    socket.write(request);
    setTimeout(() => resolve(''), 3_000);
  });
}
const hello = (socket: TLSSocket, id = 1) => ask(socket, helloMessage(id));
const unauthenticatedGet = (socket: TLSSocket, name: string) =>
  ask(socket, `GET /v1/customers HTTP/1.1\r\nhost: ${name}\r\nconnection: keep-alive\r\n\r\n`);

/** One SSLRequest + TLS with `servername` from `address`, then silence: a login in progress. */
function loggingIn(address: string, servername: string): Promise<TLSSocket> {
  return stranger(address).then(
    (raw) =>
      new Promise((resolve, reject) => {
        raw.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
        raw.once('data', () => {
          const socket = tlsConnect({ socket: raw, servername, rejectUnauthorized: false });
          socket.once('secureConnect', () => resolve(socket));
          socket.once('error', reject);
          socket.resume();
        });
      }),
  );
}
const gone = (socket: TLSSocket) => socket.destroyed || socket.readableEnded;

describe('strangers cannot take a candidate’s sandbox nor write their signals', () => {
  // The old gateway counted a MongoDB or data API connection as the candidate's as soon as the
  // sandbox answered anything: 2 (the cap here) unauthenticated hellos locked the candidate out.
  it('MongoDB hellos without credentials never take the candidate’s slots', async () => {
    const name = host('framed', 'events');
    const squat: TLSSocket[] = [];
    try {
      for (const address of ['127.0.6.1', '127.0.6.2', '127.0.6.3'])
        for (let i = 0; i < 2; i++) {
          const socket = await tlsFrom(address, name);
          squat.push(socket);
          await hello(socket, squat.length + 10);
        }
      const candidate = await tlsFrom('127.0.0.1', name);
      squat.push(candidate);
      const reply = await hello(candidate, 99);
      expect(reply.length).toBeGreaterThan(16);
      expect(reply).toContain('isWritablePrimary');
    } finally {
      for (const socket of squat) socket.destroy();
    }
  });

  it('unauthenticated data API requests kept alive never take the candidate’s slots', async () => {
    const name = host('framed', 'source');
    const squat: TLSSocket[] = [];
    onTestFinished(() => {
      for (const socket of squat) socket.destroy();
    });
    for (const address of ['127.0.6.4', '127.0.6.5'])
      for (let i = 0; i < 3; i++) {
        const socket = await tlsFrom(address, name, ['http/1.1']);
        squat.push(socket);
        // 401 to each (the old gateway refused the third: 503, its 2 slots were the strangers').
        expect(await unauthenticatedGet(socket, name)).toMatch(/^HTTP\/1\.1 401/);
      }
    const body = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--resolve',
      `${name}:${gateway.port}:127.0.0.1`,
      '-k',
      '-H',
      `X-API-Key: ${API_KEY}`,
      `https://${name}:${gateway.port}/v1/customers?limit=2`,
    ]);
    expect(JSON.parse(body.stdout).data).toHaveLength(2);
  });

  it('an unauthenticated connection the sandbox answered is closed once idle (3 s here)', async () => {
    const socket = await tlsFrom('127.0.6.1', host('framed', 'events'));
    onTestFinished(() => {
      socket.destroy();
    });
    expect((await hello(socket)).length).toBeGreaterThan(16);
    const t0 = Date.now();
    await closed(socket as unknown as Socket);
    expect(Date.now() - t0).toBeGreaterThan(2_000);
    expect(Date.now() - t0).toBeLessThan(6_000);
  });

  // The old gateway cut the oldest login in progress to a sandbox, whoever owned it.
  it('strangers’ logins in progress never evict the candidate’s: each address makes room from its own', async () => {
    const name = host('framed');
    const candidate = await loggingIn('127.0.0.1', name);
    const strangers: TLSSocket[] = [candidate];
    onTestFinished(() => {
      for (const socket of strangers) socket.destroy();
    });
    for (const address of ['127.0.6.6', '127.0.6.7', '127.0.6.8'])
      for (let i = 0; i < 4; i++) strangers.push(await loggingIn(address, name));
    await sleep(300);
    expect(gone(candidate)).toBe(false);
    // 4 from each address, at most 3 kept: each address lost its own oldest.
    expect(strangers.filter(gone)).toEqual([strangers[1], strangers[5], strangers[9]]);
    candidate.destroy();
    // And a real psql logs in, again and again, while strangers keep opening logins.
    let churning = true;
    const churn = (async () => {
      while (churning) {
        const socket = await loggingIn('127.0.6.9', name).catch(() => undefined);
        strangers.push(...(socket ? [socket] : []));
      }
    })();
    const logins = [];
    for (let i = 0; i < 5; i++) logins.push(await psql(name));
    churning = false;
    await churn;
    expect(logins.map((login) => login.out)).toEqual(['42', '42', '42', '42', '42']);
  });

  // The per-address cap alone let N addresses hold 3 × N logins in progress on one sandbox (19 here).
  it('many addresses together hold at most 12 logins in progress, taken from the busiest, never the candidate’s', async () => {
    const name = host('crowded');
    const candidate = await loggingIn('127.0.0.1', name);
    const sockets: TLSSocket[] = [candidate];
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
    });
    // Six addresses, three each (the per-address cap): 19 logins in progress, the total cap is 12.
    for (const address of ['127.0.7.1', '127.0.7.2', '127.0.7.3', '127.0.7.4', '127.0.7.5', '127.0.7.6'])
      for (let i = 0; i < 3; i++) sockets.push(await loggingIn(address, name));
    await sleep(300);
    expect(gone(candidate)).toBe(false);
    expect(sockets.filter((s) => !gone(s))).toHaveLength(12);
    // Each newcomer took room from the address holding the most, oldest first (pending.ts): the
    // first two of .1, then the first of each other address; the candidate's one, never.
    expect(sockets.flatMap((s, i) => (gone(s) ? [i] : []))).toEqual([1, 2, 4, 7, 10, 13, 16]);
    candidate.destroy();
    // And a real psql logs in, again and again, while eight addresses keep the cap full.
    let churning = true;
    const churn = Array.from({ length: 8 }, (_, i) =>
      (async () => {
        while (churning) {
          const socket = await loggingIn(`127.0.8.${i + 1}`, name).catch(() => undefined);
          sockets.push(...(socket ? [socket] : []));
        }
      })(),
    );
    const logins = [];
    for (let i = 0; i < 5; i++) logins.push(await psql(name));
    churning = false;
    await Promise.all(churn);
    expect(logins.map((login) => login.out)).toEqual(['42', '42', '42', '42', '42']);
  });

  it('only the candidate’s logged-in sessions reach their integrity signals, never strangers’', async () => {
    // The candidate logs in to PostgreSQL and calls the data API with the key, from 127.0.0.1.
    expect((await psql(host('framed'))).out).toBe('42');
    await run('curl', [
      '-sS',
      '--fail',
      '--resolve',
      `${host('framed', 'source')}:${gateway.port}:127.0.0.1`,
      '-k',
      '-H',
      `X-API-Key: ${API_KEY}`,
      `https://${host('framed', 'source')}:${gateway.port}/v1/customers?limit=1`,
    ]);
    await eventually(async () => {
      const framed = await kube(kubeconfig).get<Assessment & KubeObject>(KINDS.Assessment, team, 'framed');
      // The strangers above (127.0.6.x: hellos, 401s, silent logins) left no trace.
      const signals = framed?.status?.signals;
      expect(signals).toMatchObject({ clientAddresses: ['127.0.0.1'], clientAddressCount: 1 });
      // 6 psql logins and 2 data API calls with the key in this describe; no MongoDB session.
      expect([...(signals?.sandboxes ?? [])].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'source', connections: 2 },
        { name: 'warehouse', connections: 6 },
      ]);
    }, 10_000);
  });
});

describe('open connections follow the time box', () => {
  async function held(name: string) {
    const child = spawn('psql', [conninfo(name), '-Atc', 'select pg_sleep(30)'], {
      env: { ...process.env, PGPASSWORD: pg.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exit = new Promise<{ at: number; err: string }>((resolve) =>
      // 'close', not 'exit': stderr may still be arriving when the process exits.
      child.once('close', () => resolve({ at: Date.now(), err })),
    );
    await sleep(1_000);
    expect(child.exitCode).toBeNull();
    return { exit }; // wrapped: an async function returning a promise would wait for it
  }

  it('cuts a running session within 5 s of revocation, and psql prints why', async () => {
    const { exit } = await held(host('revoked-live'));
    const at = Date.now();
    await kube(kubeconfig).mergePatch(KINDS.Assessment, team, 'revoked-live', { spec: { revoked: true } });
    const { at: ended, err } = await exit;
    expect(ended - at).toBeLessThan(5_000);
    expect(err).toMatch(/this assessment was revoked/);
  });

  it('cuts a running session within 5 s of the deadline, without waiting for the operator', async () => {
    const { exit } = await held(host('ending-live'));
    const deadline = new Date(Date.now() + 1_000).toISOString();
    await kube(kubeconfig).mergePatch(
      KINDS.Assessment,
      team,
      'ending-live',
      { status: { expiresAt: deadline } },
      'status',
    );
    const { at: ended, err } = await exit;
    // The gateway tolerates 2 s of clock skew past the deadline, then cuts within a recheck.
    expect(ended - Date.parse(deadline)).toBeLessThan(5_000);
    expect(err).toMatch(/this assessment ended/);
  });

  // Host names carry no secret (a hash of team/assessment): distinct refusals told strangers which
  // assessments exist ("no sandbox is served under …" for the others).
  it('afterwards, a new connection hears what a name never served hears: no oracle of which exist', async () => {
    const answers = await Promise.all(
      [host('ending-live'), host('revoked-live'), host('never-created')].map((name) => psql(name)),
    );
    expect(answers.map((answer) => answer.code)).toEqual([2, 2, 2]);
    expect(answers[0]!.err).toMatch(/FATAL: +no sandbox is open under this name/);
    expect(new Set(answers.map((answer) => answer.err.replace(/"[^"]*"/g, '')))).toHaveLength(1);
  });
});

// libpq sends psql's Ctrl-C as a CancelRequest in plain text on a new connection: no TLS, so no
// host name. The gateway used to refuse it, and a runaway query ran to its limit.
describe('psql’s Ctrl-C through the gateway', () => {
  const cancelRequest = (key: Buffer) => {
    const b = Buffer.alloc(16);
    b.writeInt32BE(16, 0);
    b.writeInt32BE(80877102, 4);
    key.copy(b, 8);
    return b;
  };

  it('cancels the candidate’s running query; a stranger’s guessed keys are dropped, then not even read', async () => {
    // A stranger guessing keys from its own address: 20 misses a minute, then dropped unread.
    for (let i = 0; i < 24; i++) {
      const socket = await stranger('127.0.7.1');
      socket.write(cancelRequest(Buffer.from(newHostKey().slice(0, 8))));
      await closed(socket);
    }
    const metrics = await gateway.metrics();
    expect(metrics).toMatch(
      /epreuve_gateway_connections_total\{kind="unknown",result="cancel_unknown"\} 20\b/,
    );
    expect(metrics).toMatch(
      /epreuve_gateway_connections_total\{kind="unknown",result="cancel_limited"\} 4\b/,
    );

    const child = spawn('psql', [conninfo(host('target')), '-Atc', 'select pg_sleep(30)'], {
      env: { ...process.env, PGPASSWORD: pg.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exit = new Promise<number>((resolve) => child.once('close', () => resolve(Date.now())));
    await sleep(1_500);
    expect(child.exitCode).toBeNull();
    const at = Date.now();
    child.kill('SIGINT');
    expect((await exit) - at).toBeLessThan(5_000);
    expect(err).toMatch(/canceling statement due to user request/);
    expect(await gateway.metrics()).toMatch(
      /epreuve_gateway_connections_total\{kind="postgres",result="cancel"\} 1\b/,
    );
  });

  // Red team 5: matching cancels were not limited, so a candidate replaying their own session's
  // key made the gateway open a connection to their sandbox for each, without end.
  it('counts every cancel from an address, its own session’s too: 60 a minute', async () => {
    const client = new PgLib.Client({
      host: '127.0.0.1',
      port: gateway.port,
      user: pg.user,
      password: pg.password,
      database: 'postgres',
      ssl: { servername: host('target'), rejectUnauthorized: false },
    });
    await client.connect();
    try {
      // The key the server gave this session in BackendKeyData, as libpq keeps it for Ctrl-C.
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const key = Buffer.alloc(8);
      key.writeInt32BE(processID, 0);
      key.writeInt32BE(secretKey, 4);
      for (let i = 0; i < 64; i++) {
        const socket = await stranger('127.0.7.2');
        socket.write(cancelRequest(key));
        await closed(socket);
      }
      const metrics = await gateway.metrics();
      // psql's Ctrl-C above, then 60 of these forwarded; the other 4 dropped unread.
      expect(metrics).toMatch(/epreuve_gateway_connections_total\{kind="postgres",result="cancel"\} 61\b/);
      expect(metrics).toMatch(
        /epreuve_gateway_connections_total\{kind="unknown",result="cancel_limited"\} 8\b/,
      );
      // The session itself is still there.
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  });
});
