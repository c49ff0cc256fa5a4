import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../hack/cluster/control-plane.ts';
import { eventually } from './kube.ts';

const GATEWAY = join(import.meta.dirname, '..', '..', 'gateway', 'src', 'main.ts');

/** A self-signed wildcard certificate for `*.<domain>` (the gateway's TLS), in a temp directory. */
export function wildcardCertificate(domain: string): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'epreuve-gateway-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=*.${domain}`,
      '-addext',
      `subjectAltName=DNS:*.${domain}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** The real gateway process (node gateway/src/main.ts) on a random loopback port. */
export class GatewayProcess {
  private child?: ChildProcess;
  output = '';
  port = 0;
  metricsPort = 0;

  async start(
    kubeconfig: string,
    domain: string,
    tls: { cert: string; key: string },
    env: Record<string, string>,
  ) {
    this.metricsPort = await freePort();
    this.child = spawn(process.execPath, [GATEWAY], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        EPREUVE_GATEWAY_HOST: '127.0.0.1',
        EPREUVE_GATEWAY_PORT: '0',
        EPREUVE_GATEWAY_DOMAIN: domain,
        EPREUVE_GATEWAY_TLS_CERT_FILE: tls.cert,
        EPREUVE_GATEWAY_TLS_KEY_FILE: tls.key,
        EPREUVE_METRICS_PORT: String(this.metricsPort),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    this.child.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    await eventually(async () => {
      const m = /"port":(\d+).*sandbox gateway listening/.exec(this.output);
      if (!m) throw new Error(`gateway not listening yet:\n${this.output.slice(-2000)}`);
      this.port = Number(m[1]);
    }, 30_000);
    return this;
  }

  /** Resident memory of the gateway process, in bytes (from /proc). */
  rss(): number {
    const status = readFileSync(`/proc/${this.child!.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }

  get alive(): boolean {
    return this.child?.exitCode === null && this.child.signalCode === null;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  stop() {
    this.child?.kill('SIGTERM');
  }
}
