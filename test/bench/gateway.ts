/**
 * Sandbox gateway under attack (make bench): a real `psql` connecting through the gateway (TLS,
 * SCRAM, `select 1`) — first with nobody else around (the baseline), then while strangers hold
 * 1 000 idle connections from 20 loopback addresses and stream GSSENC requests without end (the
 * attack that OOM-killed the first gateway). Reported: connect latency during the attack as a
 * ratio of the baseline (goal: p95 ≤ 3×), and the gateway process's resident memory (goal: under
 * 64 MiB of growth). Production logging on; the gateway's production defaults.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { wildcardCertificate } from '../harness/gateway.ts';
import { ms, percentile } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const DOMAIN = 'bench.test';
const LABEL = 'warehouse-bench1';
const run = promisify(execFile);
const rss = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

const pg = await new PostgresServer().start();
const tls = wildcardCertificate(DOMAIN);
const child = spawn(
  process.execPath,
  [
    new URL('./gateway-process.ts', import.meta.url).pathname,
    DOMAIN,
    tls.cert,
    tls.key,
    LABEL,
    String(pg.port),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const strangers: Socket[] = [];
let flooding = true;
try {
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(JSON.parse(b.toString()).port));
    child.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
  });
  const conninfo = `host=${LABEL}.${DOMAIN} hostaddr=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=require`;
  const connectOnce = async () => {
    const t = performance.now();
    await run('psql', [conninfo, '-Atc', 'select 1'], {
      env: { ...process.env, PGPASSWORD: pg.password, PGCONNECT_TIMEOUT: '10' },
    });
    return performance.now() - t;
  };
  const measure = async () => {
    const samples: number[] = [];
    for (let i = 0; i < ROUNDS; i++) samples.push(await connectOnce());
    return samples;
  };
  await connectOnce(); // warm-up
  const rssBefore = rss(child.pid!);
  const baseline = await measure();

  // The attack: 1 000 idle connections from 20 addresses (50 each)…
  for (let a = 1; a <= 20; a++) {
    await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect({ host: '127.0.0.1', port, localAddress: `127.0.3.${a}` });
            s.on('error', () => {});
            s.once('connect', () => resolve());
            s.once('close', () => resolve());
            s.resume();
            strangers.push(s);
          }),
      ),
    );
  }
  // …and a stranger streaming GSSENC requests, reconnecting whenever it is cut.
  const gssenc = Buffer.concat(Array.from({ length: 8192 }, () => Buffer.from([0, 0, 0, 8, 4, 210, 22, 48])));
  let streamed = 0;
  const flood = (async () => {
    while (flooding) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.4.1' });
        s.on('error', () => resolve());
        s.once('close', () => resolve());
        s.resume();
        const push = () => {
          while (!s.destroyed && flooding && s.write(gssenc)) streamed += gssenc.length;
        };
        s.on('drain', push);
        s.once('connect', push);
      });
      await sleep(5);
    }
  })();
  await sleep(500);
  const during = await measure();
  const rssDuring = rss(child.pid!);
  flooding = false;
  await flood;

  const p = (xs: number[], q: number) => percentile(xs, q);
  console.log(
    `gateway: psql connect through the gateway, ${ROUNDS} rounds each (production logging, default limits)`,
  );
  console.log(`  baseline (no attack): p50 ${ms(p(baseline, 50))}, p95 ${ms(p(baseline, 95))}`);
  console.log(
    `  during 1 000 idle connections + a GSSENC flood (${mib(streamed)} offered): p50 ${ms(p(during, 50))}, p95 ${ms(p(during, 95))}`,
  );
  const ratioP95 = p(during, 95) / p(baseline, 95);
  console.log(
    `  p95 ratio during/baseline: ${ratioP95.toFixed(2)}× (goal ≤ 3×) ${ratioP95 <= 3 ? 'OK' : 'OVER'}`,
  );
  const growth = rssDuring - rssBefore;
  console.log(
    `  gateway RSS: ${mib(rssBefore)} before, ${mib(rssDuring)} during (growth ${mib(growth)}; goal < 64 MiB) ${growth < 64 * 1024 * 1024 ? 'OK' : 'OVER'}`,
  );
} finally {
  flooding = false;
  for (const s of strangers) s.destroy();
  child.kill('SIGTERM');
  await pg.stop();
}
