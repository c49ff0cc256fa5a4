import { Binary, BSON } from 'bson';
import { describe, expect, it } from 'vitest';
import { HttpLoginWatcher, loginWatcher, MongoLoginWatcher } from './login.ts';

/** A server reply as MongoDB writes it: OP_MSG (flags, one kind-0 body) or the legacy OP_REPLY. */
function reply(doc: object, opCode: 2013 | 1 = 2013, sequenceFirst = false): Buffer {
  const body = Buffer.from(BSON.serialize(doc));
  let sections: Buffer;
  if (opCode === 2013) {
    // A kind-1 document sequence may come before the body: size (counts itself), identifier, docs.
    const id = Buffer.from('documents\0', 'latin1');
    const seqDoc = Buffer.from(BSON.serialize({ x: 1 }));
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + seqDoc.length);
    const sequence = Buffer.concat([Buffer.from([1]), size, id, seqDoc]);
    sections = Buffer.concat([Buffer.alloc(4), ...(sequenceFirst ? [sequence] : []), Buffer.from([0]), body]);
  } else {
    // responseFlags (4), cursorID (8), startingFrom (4), numberReturned (4), then the documents.
    const fields = Buffer.alloc(20);
    fields.writeInt32LE(1, 16);
    sections = Buffer.concat([fields, body]);
  }
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + sections.length, 0);
  header.writeInt32LE(7, 4);
  header.writeInt32LE(6, 8);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, sections]);
}
const payload = new Binary(Buffer.from('v=abc'));
const helloReply = { isWritablePrimary: true, maxWireVersion: 17, ok: 1 };

function mongo(...chunks: Buffer[]) {
  const watcher = new MongoLoginWatcher();
  for (const chunk of chunks) watcher.fromSandbox(chunk);
  return watcher.authenticated;
}

describe('MongoDB: logged in when the server ends a SASL conversation successfully', () => {
  it.each([
    ['saslContinue done', [reply({ conversationId: 1, done: true, payload, ok: 1 })], true],
    [
      'PLAIN in one saslStart, ok as a double',
      [reply({ conversationId: 1, done: true, payload, ok: 1.0 })],
      true,
    ],
    [
      'after a hello and a first SCRAM step',
      [
        reply(helloReply),
        reply({ conversationId: 1, done: false, payload, ok: 1 }),
        reply({ conversationId: 1, done: true, payload, ok: 1 }),
      ],
      true,
    ],
    ['a legacy OP_REPLY', [reply({ conversationId: 1, done: true, payload, ok: 1 }, 1)], true],
    ['a body after a document sequence', [reply({ conversationId: 1, done: true, ok: 1 }, 2013, true)], true],
    [
      'a one-step speculative login in hello',
      [reply({ ...helloReply, speculativeAuthenticate: { done: true } })],
      true,
    ],
    ['hello alone (answered to anybody)', [reply(helloReply)], false],
    [
      'a first SCRAM step in hello',
      [reply({ ...helloReply, speculativeAuthenticate: { conversationId: 1, done: false, payload } })],
      false,
    ],
    ['a SCRAM step not done', [reply({ conversationId: 1, done: false, payload, ok: 1 })], false],
    [
      'a failed login',
      [reply({ ok: 0, errmsg: 'Authentication failed.', code: 18, done: true, conversationId: 1 })],
      false,
    ],
    ['done without a conversation', [reply({ done: true, ok: 1 })], false],
    [
      'an opcode that is no reply',
      [Buffer.from(reply({ conversationId: 1, done: true, ok: 1 })).fill(0xdd, 12, 16)],
      false,
    ],
  ])('%s → %s', (_what, chunks, expected) => {
    expect(mongo(...chunks)).toBe(expected);
  });

  it('reads a reply split anywhere, even byte by byte', () => {
    const bytes = Buffer.concat([
      reply(helloReply),
      reply({ conversationId: 1, done: true, payload, ok: 1 }),
    ]);
    expect(mongo(...[...bytes].map((b) => Buffer.from([b])))).toBe(true);
    for (let cut = 1; cut < bytes.length; cut += 7)
      expect(mongo(bytes.subarray(0, cut), bytes.subarray(cut))).toBe(true);
  });

  it('skips a message over 64 KiB without keeping it, and reads the next', () => {
    const big = reply({ conversationId: 1, done: true, ok: 1, filler: 'x'.repeat(70_000) });
    const next = reply({ conversationId: 2, done: true, ok: 1 });
    expect(mongo(big)).toBe(false);
    expect(mongo(big.subarray(0, 100), big.subarray(100), next)).toBe(true);
  });

  it('stops reading a stream that is not MongoDB’s (a length under a header) or undecodable BSON', () => {
    expect(mongo(Buffer.from([3, 0, 0, 0]), reply({ conversationId: 1, done: true, ok: 1 }))).toBe(false);
    const broken = reply({ conversationId: 1, done: true, ok: 1 });
    broken.writeInt32LE(9999, 20 + 4 + 1); // the body's own size beyond the message
    expect(mongo(broken)).toBe(false);
    const garbled = reply({ conversationId: 1, done: true, ok: 1 });
    garbled.fill(0x55, 20 + 4 + 1 + 4, 20 + 4 + 1 + 8); // element types BSON does not know
    expect(mongo(garbled)).toBe(false);
  });
});

function http(request: string | string[], response: string | string[]) {
  const watcher = new HttpLoginWatcher();
  for (const chunk of [request].flat()) watcher.fromClient(Buffer.from(chunk, 'latin1'));
  for (const chunk of [response].flat()) watcher.fromSandbox(Buffer.from(chunk, 'latin1'));
  return watcher.authenticated;
}
const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nhost: x\r\n${headers}\r\n`;
const status = (code: number) => `HTTP/1.1 ${code} X\r\ncontent-length: 0\r\n\r\n`;

describe('data API: logged in when a request with a key to /v1/ is not refused', () => {
  it.each([
    ['X-API-Key, 200', get('/v1/customers', 'X-API-Key: k\r\n'), status(200), true],
    [
      'Authorization, 400 (a bad query is still the candidate’s)',
      get('/v1/orders?limit=x', 'authorization: Bearer k\r\n'),
      status(400),
      true,
    ],
    [
      'HTTP/1.0, 404',
      get('/v1/nothing', 'x-api-key:k\r\n').replace('1.1', '1.0'),
      'HTTP/1.0 404 Not Found\r\n\r\n',
      true,
    ],
    ['no key, 401', get('/v1/customers'), status(401), false],
    ['a wrong key, 401', get('/v1/customers', 'X-API-Key: wrong\r\n'), status(401), false],
    ['a key, 403', get('/v1/customers', 'X-API-Key: k\r\n'), status(403), false],
    ['wrong keys too fast, 429', get('/v1/customers', 'X-API-Key: wrong\r\n'), status(429), false],
    [
      'any key to /healthz, 200 (answered to anybody)',
      get('/healthz', 'X-API-Key: bogus\r\n'),
      status(200),
      false,
    ],
    ['an empty key header', get('/v1/customers', 'X-API-Key: \r\n'), status(200), false],
    ['a key header named otherwise', get('/v1/customers', 'X-API-Keys: k\r\n'), status(200), false],
    ['an answer that is not HTTP', get('/v1/customers', 'X-API-Key: k\r\n'), 'SSH-2.0-x\r\n', false],
  ])('%s → %s', (_what, request, response, expected) => {
    expect(http(request, response)).toBe(expected);
  });

  it('reads a head and a status line split across chunks', () => {
    const request = get('/v1/customers', 'X-API-Key: k\r\n');
    expect(http([...request], [...status(200)])).toBe(true);
  });

  it('never counts a head over 8 KiB, and reads only the first exchange', () => {
    expect(http(get('/v1/customers', `X-API-Key: k\r\nx-pad: ${'a'.repeat(9000)}\r\n`), status(200))).toBe(
      false,
    );
    const watcher = new HttpLoginWatcher();
    watcher.fromClient(Buffer.from(get('/v1/customers')));
    watcher.fromSandbox(Buffer.from(status(401)));
    watcher.fromClient(Buffer.from(get('/v1/customers', 'X-API-Key: k\r\n')));
    watcher.fromSandbox(Buffer.from(status(200)));
    expect(watcher.authenticated).toBe(false);
  });
});

describe('loginWatcher', () => {
  it('picks the watcher by sandbox kind; an unknown kind never logs in', () => {
    expect(loginWatcher('mongo')).toBeInstanceOf(MongoLoginWatcher);
    expect(loginWatcher('dataApi')).toBeInstanceOf(HttpLoginWatcher);
    const other = loginWatcher('redis');
    other.fromClient(Buffer.from(get('/v1/x', 'X-API-Key: k\r\n')));
    other.fromSandbox(Buffer.from(status(200)));
    other.fromSandbox(reply({ conversationId: 1, done: true, ok: 1 }));
    expect(other.authenticated).toBe(false);
  });
});
