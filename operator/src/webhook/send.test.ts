import type dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { guardedLookup, send } from './send.ts';

/** A resolver stand-in: every name resolves to these addresses (a unit test of the check alone). */
const resolvesTo = (...addresses: string[]) =>
  ((_host: string, _opts: unknown, cb: (e: null, a: LookupAddress[]) => void) =>
    cb(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    )) as unknown as typeof dns.lookup;

const run = (lookup: ReturnType<typeof guardedLookup>, all: boolean) =>
  new Promise<{ err: Error | null; address: unknown }>((resolve) =>
    lookup('hooks.example.com', { all }, (err, address) => resolve({ err, address })),
  );

describe('guarded lookup', () => {
  it('refuses a name when any of its addresses is forbidden (DNS rebinding)', async () => {
    const r = await run(
      guardedLookup({ allowPrivateTargets: false }, resolvesTo('93.184.215.14', '169.254.169.254')),
      false,
    );
    expect(r.err?.message).toBe(
      "hooks.example.com resolves to 169.254.169.254 is a linkLocal address; only public addresses are allowed (the team's allowPrivateTargets is off)",
    );
  });
  it('passes public addresses on, one or all as asked', async () => {
    expect(
      await run(guardedLookup({ allowPrivateTargets: false }, resolvesTo('93.184.215.14')), false),
    ).toEqual({
      err: null,
      address: '93.184.215.14',
    });
    const all = await run(
      guardedLookup({ allowPrivateTargets: false }, resolvesTo('93.184.215.14', '2606:4700::1111')),
      true,
    );
    expect(all.address).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700::1111', family: 6 },
    ]);
  });
  it('allows private addresses with the allowance', async () => {
    expect(
      (await run(guardedLookup({ allowPrivateTargets: true }, resolvesTo('10.0.0.1')), false)).address,
    ).toBe('10.0.0.1');
  });
});

describe('send refusals before any connection', () => {
  const opts = { allowPrivateTargets: false, timeoutMs: 1000, maxResponseBytes: 1024 };
  it.each([
    ['not a url', 'the webhook URL is not a valid URL'],
    [
      'http://hooks.example.com/',
      'http:// is not allowed: webhook URLs must be https (http only with allowPrivateTargets)',
    ],
    ['https://127.0.0.1/', '127.0.0.1 is a loopback address'],
    ['https://[::ffff:a9fe:a9fe]/', '::ffff:a9fe:a9fe is a linkLocal address'],
  ])('%s', async (url, error) => {
    const r = await send(url, '{}', {}, opts);
    expect(r.status).toBeUndefined();
    expect(r.error).toContain(error);
  });
});

describe('send to a local server (allowance on)', () => {
  it('reads at most maxResponseBytes of an endless answer and reports its status', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (res.write(chunk)) if (res.destroyed) return;
        res.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    try {
      const r = await send(
        `http://127.0.0.1:${port}/`,
        '{}',
        {},
        {
          allowPrivateTargets: true,
          allowLoopback: true,
          timeoutMs: 5000,
          maxResponseBytes: 1024,
        },
      );
      expect(r.status).toBe(200);
      expect(r.error).toBeUndefined();
      expect(r.ms).toBeLessThan(5000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('send with the allowance, to what it never reaches', () => {
  it('refuses loopback, where a real server listens, without connecting (and a name resolving there)', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end());
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    const opts = { allowPrivateTargets: true, timeoutMs: 2000, maxResponseBytes: 1024 };
    try {
      const literal = await send(`http://127.0.0.1:${port}/`, '{}', {}, opts);
      expect(literal.error).toBe(
        '127.0.0.1 is a loopback address; webhooks may never reach it, even with allowPrivateTargets',
      );
      const named = await send(
        `http://hooks.example.com:${port}/`,
        '{}',
        {},
        {
          ...opts,
          lookup: resolvesTo('127.0.0.1'),
        },
      );
      expect(named.error).toBe(
        'hooks.example.com resolves to 127.0.0.1 is a loopback address; webhooks may never reach it, even with allowPrivateTargets',
      );
      // The same server is reached once the operator (not the team) allows loopback.
      const allowed = await send(`http://127.0.0.1:${port}/`, '{}', {}, { ...opts, allowLoopback: true });
      expect(allowed.status).toBe(200);
      expect(connections).toBe(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it.each([
    [
      'http://169.254.169.254/latest/meta-data/',
      '169.254.169.254 is a linkLocal address (where cloud metadata services answer)',
    ],
    ['http://[fe80::1]/', 'fe80::1 is a linkLocal address'],
    ['http://0.0.0.0:8080/', '0.0.0.0 is a unspecified address'],
  ])('refuses %s', async (url, error) => {
    const r = await send(
      url,
      '{}',
      {},
      { allowPrivateTargets: true, timeoutMs: 1000, maxResponseBytes: 1024 },
    );
    expect(r.status).toBeUndefined();
    expect(r.error).toBe(`${error}; webhooks may never reach it, even with allowPrivateTargets`);
  });
});
