/**
 * The built-in single-node cluster from the command line (make up / make down use it):
 *   node hack/cluster/main.ts up     start it in the background, wait until Ready, print the kubeconfig
 *   node hack/cluster/main.ts run    run it in the foreground until SIGINT/SIGTERM
 *   node hack/cluster/main.ts down   stop it (or clean up after one that crashed) and check nothing is left
 *   node hack/cluster/main.ts status print its state
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isAlive, LocalCluster, readState, STATE_FILE, scrub } from './cluster.ts';
import { sleep, tail } from './supervisor.ts';

const LOG_FILE = join(dirname(STATE_FILE), 'cluster.log');
const say = (message: string) => console.log(`cluster: ${message}`);

async function run(): Promise<void> {
  const cluster = new LocalCluster();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await cluster.stop();
    say('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const started = Date.now();
  await cluster.start({ progress: say });
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s; KUBECONFIG=${cluster.kubeconfigPath}`);
}

async function up(): Promise<number> {
  const state = readState();
  if (state && isAlive(state.pid) && state.ready) {
    say(`already running (pid ${state.pid}); KUBECONFIG=${state.kubeconfig}`);
    return 0;
  }
  if (state && !isAlive(state.pid)) {
    say('a previous cluster died without cleaning up: cleaning up first');
    await scrub(state);
  }
  mkdirSync(dirname(LOG_FILE), { recursive: true });
  const log = openSync(LOG_FILE, 'w');
  const child = spawn(process.execPath, [import.meta.filename, 'run'], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.unref();
  let printed = 0;
  const started = Date.now();
  for (;;) {
    const lines = readFileSync(LOG_FILE, 'utf8').split('\n');
    for (const line of lines.slice(printed, -1)) if (line.startsWith('cluster: ')) console.log(line);
    printed = Math.max(printed, lines.length - 1);
    const now = readState();
    if (now && now.pid === child.pid && now.ready) {
      say(`up in ${((Date.now() - started) / 1000).toFixed(1)} s (log: ${LOG_FILE})`);
      return 0;
    }
    if (child.exitCode !== null || !isAlive(child.pid!)) {
      console.error(`cluster: failed to start; last lines of ${LOG_FILE}:\n${tail(LOG_FILE, 30)}`);
      return 1;
    }
    await sleep(500);
  }
}

async function down(): Promise<number> {
  const state = readState();
  if (!state) {
    say(`no local cluster (${STATE_FILE} does not exist)`);
    return 0;
  }
  if (isAlive(state.pid)) {
    say(`stopping (pid ${state.pid})`);
    process.kill(state.pid, 'SIGTERM');
    for (let i = 0; i < 240 && isAlive(state.pid); i++) await sleep(500);
    if (isAlive(state.pid)) process.kill(state.pid, 'SIGKILL');
  }
  const left = await scrub(state);
  if (left.length > 0) {
    console.error(`cluster: left behind: ${left.join('; ')}`);
    return 1;
  }
  say('down: no processes, mounts, network namespaces, interfaces or iptables rules left');
  return 0;
}

function status(): number {
  const state = readState();
  if (!state || !isAlive(state.pid)) {
    say(existsSync(STATE_FILE) ? 'not running (crashed: `make down` cleans up)' : 'not running');
    return 3;
  }
  say(`${state.ready ? 'ready' : 'starting'} (pid ${state.pid}); KUBECONFIG=${state.kubeconfig}`);
  return 0;
}

const command = process.argv[2];
switch (command) {
  case 'run':
    await run().catch((err) => {
      console.error(`cluster: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    });
    break;
  case 'up':
    process.exit(await up());
    break;
  case 'down':
    process.exit(await down());
    break;
  case 'status':
    process.exit(status());
    break;
  default:
    console.error('usage: node hack/cluster/main.ts up|run|down|status');
    process.exit(2);
}
