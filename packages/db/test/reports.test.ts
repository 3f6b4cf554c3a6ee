import { toCsv, usageColumns } from '../src/reports';

describe('toCsv (RFC 4180)', () => {
  it('writes a header and CRLF rows, quoting only fields with quotes, commas or line breaks', () => {
    const rows = [
      { a: 'plain', b: 1, c: null },
      { a: 'with, comma', b: -2.5, c: 'say "hi"' },
      { a: 'two\nlines', b: 0, c: 'cr\r\nlf' },
      { a: new Date('2026-11-01T00:00:00Z'), b: 10n, c: undefined },
    ];
    expect(toCsv(rows, ['a', { key: 'b', header: 'b,"x"' }, 'c'])).toBe(
      'a,"b,""x""",c\r\n' +
        'plain,1,\r\n' +
        '"with, comma",-2.5,"say ""hi"""\r\n' +
        '"two\nlines",0,"cr\r\nlf"\r\n' +
        '2026-11-01T00:00:00.000Z,10,\r\n',
    );
    expect(toCsv([], ['a'])).toBe('a\r\n');
  });

  it('defuses text cells a spreadsheet would run as formulas, and only when asked; numbers untouched', () => {
    const rows = [{ s: '=1+1', t: '@SUM(A1)', n: -5, u: 'ok' }];
    expect(toCsv(rows, ['s', 't', 'n', 'u'], { guardFormulas: true })).toBe("s,t,n,u\r\n'=1+1,'@SUM(A1),-5,ok\r\n");
    expect(toCsv(rows, ['s', 't', 'n', 'u'])).toBe('s,t,n,u\r\n=1+1,@SUM(A1),-5,ok\r\n');
  });

  it('names the columns of a usage report by its grouping keys, then the measures', () => {
    expect(usageColumns(['month', 'user', 'month']).map((c) => c.header ?? c.key)).toEqual([
      'month',
      'user_email',
      'user_name',
      'gpu_seconds',
      'gpu_hours',
      'amount_micros',
      'jobs',
    ]);
  });
});
