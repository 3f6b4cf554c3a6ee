import { TtlCache } from '../../src/services/ttl-cache';

describe('TtlCache', () => {
  let t = 0;
  const now = () => t;

  it('forgets an entry once its time is up', () => {
    t = 0;
    const c = new TtlCache<string>(1000, 10, now);
    c.set('a', 'x');
    t = 999;
    expect(c.get('a')).toBe('x');
    t = 1000;
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest first', () => {
    t = 0;
    const c = new TtlCache<number>(1000, 2, now);
    c.set('a', 1);
    c.set('b', 2);
    c.set('a', 3); // re-set: now the newest
    c.set('c', 4);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([3, undefined, 4]);
  });

  it('drops matching entries on demand, and stores nothing with a zero ttl', () => {
    const c = new TtlCache<{ user: string }>(1000, 10, now);
    c.set('t1', { user: 'u1' });
    c.set('t2', { user: 'u2' });
    c.deleteWhere((v) => v.user === 'u1');
    expect([c.get('t1'), c.get('t2')]).toEqual([undefined, { user: 'u2' }]);
    const off = new TtlCache<number>(0, 10, now);
    off.set('a', 1);
    expect(off.get('a')).toBeUndefined();
  });
});
