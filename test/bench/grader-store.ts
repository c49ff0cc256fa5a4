/**
 * What the grader store adds to a MongoDB sandbox's cold start (make bench): the store's own start
 * (FerretDB with authentication, as the e2e image runs it) and memory, and the seed with and without
 * it — the candidate's data alone, then the same seed with the store: the hidden variants (which the
 * store holds instead of the candidate's server) loaded while the candidate's data loads, and the
 * sample template's reference result computed on the candidate's data and on each variant.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { DB_CREDENTIAL_KEYS as KEYS } from '../../crds/src/index.ts';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { runSeed, type SeedPlan } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';
import { GraderStore } from '../harness/grader-store.ts';
import { ms } from './stats.ts';

const SIZE = (process.env.BENCH_DATASET_SIZE ?? 'standard') as 'standard' | 'small';
const VARIANTS = 2;

/** The process listening on a loopback port (FerretDB runs under its image's entrypoint). */
const pidOn = (port: number) =>
  Number(/pid=(\d+)/.exec(execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString())?.[1]);
const memory = (port: number) => {
  const status = readFileSync(`/proc/${pidOn(port)}/status`, 'utf8');
  const mib = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
  return `RSS ${mib('VmRSS').toFixed(1)} MiB (peak ${mib('VmHWM').toFixed(1)} MiB)`;
};
const creds = {
  [KEYS.database]: 'sandbox',
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw-0123456789',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw-0123456789',
};
const servers = {
  plain: new FerretServer({ auth: { username: 'root', password: creds[KEYS.adminPassword] } }),
  withStore: new FerretServer({ auth: { username: 'root', password: creds[KEYS.adminPassword] } }),
};
const store = new GraderStore();
const dir = credentialsDir(creds);
try {
  let t = performance.now();
  await store.start();
  console.log(`grader store: FerretDB up in ${ms(performance.now() - t)}, idle ${memory(store.ferret.port)}`);
  await Promise.all([servers.plain.start(), servers.withStore.start()]);
  const entry = (port: number): SeedPlan[number] => ({
    name: 'events',
    kind: 'mongo',
    host: '127.0.0.1',
    port,
    dataset: 'retail@1',
    credentials: dir,
  });
  const o = { size: SIZE, waitTimeoutMs: 60_000, log: () => {}, allowRolelessUsers: true };
  t = performance.now();
  await runSeed([entry(servers.plain.port)], o);
  const plain = performance.now() - t;
  t = performance.now();
  await runSeed(
    [
      {
        ...entry(servers.withStore.port),
        hiddenVariants: VARIANTS,
        store: store.location,
        // The data-engineer sample's MongoDB task.
        references: [{ task: 'sessions-per-device', exercise: 'sessions-per-device' }],
      },
    ],
    o,
  );
  const withStore = performance.now() - t;
  console.log(`seed of retail@1 (${SIZE}) on FerretDB:`);
  console.log(`  the candidate's data alone                  ${ms(plain)}`);
  console.log(
    `  + ${VARIANTS} hidden variants and references in the store ${ms(withStore)} (+${ms(withStore - plain)})`,
  );
  console.log(
    `  grader store after the seed: ${memory(store.ferret.port)}; the candidate's server: ${memory(servers.withStore.port)}`,
  );
} finally {
  await Promise.allSettled([store.stop(), servers.plain.stop(), servers.withStore.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
