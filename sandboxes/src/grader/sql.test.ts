import { describe, expect, it } from 'vitest';
import { AnswerError, prepareAnswer } from './sql.ts';

describe('prepareAnswer', () => {
  it('strips trailing semicolons and whitespace', () =>
    expect(prepareAnswer('SELECT 1;;  \n')).toBe('SELECT 1'));
  it.each(['', '   ', ' ; ', '-- just a comment', '/* nothing */ ;'])(
    'refuses the empty answer %j',
    (sql) => {
      expect(() => prepareAnswer(sql)).toThrow(AnswerError);
      expect(() => prepareAnswer(sql)).toThrow(/empty/);
    },
  );
  it('refuses an oversized answer, saying how long it is', () => {
    expect(() => prepareAnswer('x'.repeat(25_000), 20_000)).toThrow(/25,000 characters; the limit is 20,000/);
  });
  it('refuses a NUL character, saying where (PostgreSQL would drop the connection on it)', () => {
    expect(() => prepareAnswer('SELECT 1\u0000')).toThrow(/NUL character \(U\+0000\) at position 9/);
  });
});
