import { createTestDatabase, type TestDatabase } from '@gpulab/testing';
import {
  createDb,
  createUserToken,
  type Db,
  ensureUserWithQuota,
  hashToken,
  issueToken,
  revokeToken,
  verifyToken,
  verifyTokenHash,
} from '../src';

let tdb: TestDatabase;
let db: Db;
let userId: string;
const now = new Date('2026-11-28T10:00:00Z');
const period = { periodStart: new Date('2026-01-01'), periodEnd: new Date('2027-01-01') };

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  userId = (
    await ensureUserWithQuota(db, {
      email: 'tok@uni.edu',
      name: 'Tok',
      role: 'instructor',
      group: 'a',
      grantSeconds: 1,
      ...period,
    })
  ).user.id;
});
afterAll(async () => {
  await db.$disconnect();
  await tdb.drop();
});

describe('verifyToken', () => {
  it('resolves a token to its principal with the user role, and notes its use at most once a minute', async () => {
    const { id, secret } = await createUserToken(db, userId, 't');
    expect(await verifyToken(db, secret, now)).toEqual({
      tokenId: id,
      userId,
      role: 'instructor',
      scope: 'user',
      jobId: null,
    });
    expect((await db.apiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt).toEqual(now);
    await verifyToken(db, secret, new Date(now.getTime() + 30_000));
    expect((await db.apiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt).toEqual(now);
    const later = new Date(now.getTime() + 61_000);
    await verifyToken(db, secret, later);
    expect((await db.apiToken.findUniqueOrThrow({ where: { id } })).lastUsedAt).toEqual(later);
  });

  it('refuses unknown, revoked and expired tokens; says when a token expires', async () => {
    expect(await verifyToken(db, 'gpl_nope', now)).toBeNull();
    const revoked = await createUserToken(db, userId, 'r');
    await revokeToken(db, revoked.id, now);
    expect(await verifyToken(db, revoked.secret, now)).toBeNull();
    const expiresAt = new Date(now.getTime() + 1000);
    const expiring = await createUserToken(db, userId, 'e', expiresAt);
    expect((await verifyTokenHash(db, hashToken(expiring.secret), now))?.expiresAt).toEqual(expiresAt);
    expect(await verifyToken(db, expiring.secret, expiresAt)).toBeNull();
  });

  it('scopes a job token to its job', async () => {
    const jobId = '11111111-1111-4111-8111-111111111111';
    const { secret } = await issueToken(db, { userId, name: 'j', scope: 'job', jobId });
    expect(await verifyToken(db, secret, now)).toMatchObject({ scope: 'job', jobId });
  });
});
