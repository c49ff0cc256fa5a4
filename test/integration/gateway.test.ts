import { execFileSync, spawn } from 'node:child_process';
import type { LookupAddress } from 'node:dns';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KINDS, newHostKey, sandboxHostLabel } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DataApiProcess } from '../harness/data-api.ts';
import { assessmentObject } from '../harness/fixtures.ts';
import { GatewayProcess, wildcardCertificate } from '../harness/gateway.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';

/**
 * The sandbox gateway as candidates meet it: the real process (node gateway/src/main.ts) fed
 * by a real API server, in front of a real PostgreSQL, a real MongoDB wire-protocol server and the
 * real data API, reached with the real `psql`, the official MongoDB driver and `curl` — by name,
 * over TLS, the way the candidate page tells them to.
 */
const kubeconfig = inject('kubeconfig');
const pg = inject('postgres');
const mongoUrl = new URL(inject('mongoUrl'));
const DOMAIN = 'sandbox.test';
const ASMT = KINDS.Assessment;
const API_KEY = 'gw-test-api-key-5d1e9a';
const tls = wildcardCertificate(DOMAIN);
const CERT = tls.cert;

let team: string;
const gateway = new GatewayProcess();
let port = 0;
const dataApi = new DataApiProcess();
/** Each assessment's host key, drawn as the operator draws it (and written into its status). */
const keys = new Map<string, string>();
const keyOf = (assessment: string) => {
  if (!keys.has(assessment)) keys.set(assessment, newHostKey());
  return keys.get(assessment)!;
};
const host = (assessment: string, sandbox: string) =>
  `${sandboxHostLabel(keyOf(assessment), sandbox)}.${DOMAIN}`;

function psql(conninfo: string, sql = 'select 40 + 2') {
  try {
    const out = execFileSync('psql', [conninfo, '-Atc', sql], {
      env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: '10' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { code: 0, out: out.trim(), err: '' };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout, err: err.stderr };
  }
}
const via = (name: string, extra = 'sslmode=require') =>
  `host=${name} hostaddr=127.0.0.1 port=${port} user=${pg.user} dbname=postgres ${extra}`;

function curl(args: string[]) {
  try {
    return execFileSync('curl', ['-sS', '--max-time', '10', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    return `${(e as { stdout: string }).stdout}${(e as { stderr: string }).stderr}`;
  }
}

/** A running time box: started now, four hours to go (the gateway checks the clock itself). */
const STARTED_AT = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const EXPIRES_AT = new Date(Date.now() + 4 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');

async function ready(
  name: string,
  phase: string,
  sandboxes: Array<[string, string, number]>,
  started: string | null = STARTED_AT,
) {
  const client = kube(kubeconfig);
  await client.create(assessmentObject(team, name));
  await client.mergePatch(
    ASMT,
    team,
    name,
    {
      status: {
        phase,
        hostKey: keyOf(name),
        ...(started ? { startedAt: started, expiresAt: EXPIRES_AT } : {}),
        sandboxes: sandboxes.map(([sandbox, kind, p]) => ({
          name: sandbox,
          kind,
          ready: true,
          host: '127.0.0.1',
          port: p,
        })),
      },
    },
    'status',
  );
}

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'team-gw');
  await dataApi.start({ API_KEY });
  const dataApiPort = Number(new URL(dataApi.url).port);
  await ready('jane-doe', 'Ready', [
    ['warehouse', 'postgres', pg.port],
    ['events', 'mongo', Number(mongoUrl.port)],
    ['source', 'dataApi', dataApiPort],
  ]);
  await ready('late', 'Expired', [['warehouse', 'postgres', pg.port]]);
  // Ready, seeded, but the candidate has not pressed Start (OnFirstAccess): no connection yet.
  await ready('early', 'Ready', [['warehouse', 'postgres', pg.port]], null);

  await gateway.start(kubeconfig, DOMAIN, tls, {
    EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: '2',
    EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS: '1',
  });
  port = gateway.port;
}, 120_000);

afterAll(async () => {
  gateway.stop();
  await dataApi.stop();
});

describe('sandbox gateway', () => {
  it('takes psql to the candidate’s PostgreSQL over TLS, by name (sslmode=require and verify-full)', () => {
    expect(psql(via(host('jane-doe', 'warehouse')))).toEqual({ code: 0, out: '42', err: '' });
    const verified = psql(
      via(host('jane-doe', 'warehouse'), `sslmode=verify-full sslrootcert=${CERT}`),
      'show ssl',
    );
    // The gateway terminates TLS; the hop to the sandbox stays inside the cluster.
    expect(verified).toEqual({ code: 0, out: 'off', err: '' });
  });

  it('takes the official MongoDB driver to the candidate’s MongoDB over TLS', async () => {
    // The driver resolves the sandbox's name itself; point it at loopback as DNS would.
    const lookup = (_h: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
      opts?.all ? cb(null, [{ address: '127.0.0.1', family: 4 } as LookupAddress]) : cb(null, '127.0.0.1', 4);
    const client = new MongoClient(
      `mongodb://${host('jane-doe', 'events')}:${port}/?tls=true&directConnection=true`,
      {
        tlsCAFile: CERT,
        serverSelectionTimeoutMS: 10_000,
        lookup,
      } as never,
    );
    try {
      await client.connect();
      const db = client.db(`gw_${Date.now()}`);
      expect((await db.command({ ping: 1 })).ok).toBe(1);
      await db.collection('notes').insertOne({ through: 'gateway' });
      expect(await db.collection('notes').findOne({}, { projection: { _id: 0 } })).toEqual({
        through: 'gateway',
      });
      await db.dropDatabase();
    } finally {
      await client.close();
    }
  });

  it('takes curl to the candidate’s data API over HTTPS', () => {
    const name = host('jane-doe', 'source');
    const body = curl([
      '--resolve',
      `${name}:${port}:127.0.0.1`,
      '--cacert',
      CERT,
      '-H',
      `X-API-Key: ${API_KEY}`,
      `https://${name}:${port}/v1/customers?limit=2`,
    ]);
    expect(JSON.parse(body).data).toHaveLength(2);
  });

  it.each([
    [
      'an assessment whose clock has not started',
      () => via(host('early', 'warehouse')),
      /FATAL: +no sandbox is open under this name: check the host on your candidate page/,
    ],
    [
      'an expired assessment',
      () => via(host('late', 'warehouse')),
      /FATAL: +no sandbox is open under this name: check the host on your candidate page/,
    ],
    [
      'an unknown sandbox',
      () => via(`nobody-12345678.${DOMAIN}`),
      /FATAL: +no sandbox is open under this name: check the host on your candidate page/,
    ],
    [
      'an address instead of a name',
      () => `host=127.0.0.1 port=${port} user=x dbname=x sslmode=require`,
      /connect to <sandbox>.sandbox.test by name/,
    ],
    [
      'a connection without TLS',
      () => via(host('jane-doe', 'warehouse'), 'sslmode=disable'),
      /requires TLS: connect with sslmode=require/,
    ],
  ])('refuses psql with a reason for %s', (_label, conninfo, message) => {
    const res = psql(conninfo());
    expect(res.code).not.toBe(0);
    expect(res.err).toMatch(message);
  });

  it('refuses HTTP with a reason: plain HTTP, and HTTPS to an ended assessment', () => {
    expect(curl([`http://127.0.0.1:${port}/v1/customers`])).toMatch(/speaks HTTPS only/);
    const name = host('late', 'warehouse');
    expect(
      curl(['--resolve', `${name}:${port}:127.0.0.1`, '--cacert', CERT, `https://${name}:${port}/`]),
    ).toMatch(/"title":"no sandbox is open under this name/);
  });

  it('caps connections per sandbox and frees the slots when they close', async () => {
    const name = host('jane-doe', 'warehouse');
    const hold = () =>
      spawn('psql', [via(name), '-Atc', 'select pg_sleep(4)'], {
        env: { ...process.env, PGPASSWORD: pg.password },
      });
    const held = [hold(), hold()];
    await sleep(1500);
    const third = psql(via(name));
    expect(third.err).toMatch(/too many connections to this sandbox \(at most 2\)/);
    await Promise.all(held.map((p) => new Promise((r) => p.once('exit', r))));
    expect(psql(via(name)).out).toBe('42');
  });

  it('drops a client that never finishes its handshake', async () => {
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      socket.on('close', () => resolve(Date.now() - t0));
      socket.on('error', () => {});
    });
    expect(await closed).toBeLessThan(5_000);
  });

  it('follows the assessment: once it expires, new connections are refused', async () => {
    await kube(kubeconfig).mergePatch(ASMT, team, 'jane-doe', { status: { phase: 'Expired' } }, 'status');
    await eventually(
      async () => expect(psql(via(host('jane-doe', 'warehouse'))).err).toMatch(/no sandbox is open under/),
      15_000,
    );
    // The reason is the gateway's to log, not a stranger's to read.
    expect(gateway.output).toMatch(
      /"reason":"this assessment ended at [^"]*","msg":"sandbox connection refused"/,
    );
  });

  it('counts connections by kind and result, and never logs a credential', async () => {
    const metrics = await gateway.metrics();
    expect(metrics).toMatch(/epreuve_gateway_connections_total\{kind="postgres",result="closed"\} [1-9]/);
    expect(metrics).toMatch(/epreuve_gateway_connections_total\{kind="unknown",result="refused"\} [1-9]/);
    expect(metrics).toMatch(/epreuve_gateway_bytes_total\{direction="down"\} [1-9]/);
    expect(gateway.output).toMatch(/sandbox connection closed/);
    expect(gateway.output).not.toContain(pg.password);
    expect(gateway.output).not.toContain(API_KEY);
  });
});
