/** Job logs: text from the live bus or the S3 archive, and server-sent events that follow until the job ends. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUserToken, type Db, ensureUserWithQuota, finishJob } from '@gpulab/db';
import type { LogBus } from '@gpulab/queue';
import { layout, putObject } from '@gpulab/storage';
import type { TestS3 } from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let s3: TestS3;
let logs: LogBus;
let app: FastifyInstance;
let base: string;
let token: string;
let other: string;

beforeAll(async () => {
  t = await startTestApi({ name: 'logs', listen: true });
  ({ db, s3, app } = t);
  logs = t.logs;
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const mk = async (email: string) => {
    const { user } = await ensureUserWithQuota(db, {
      email,
      name: email,
      group: 'logs',
      grantSeconds: 3600,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return (await createUserToken(db, user.id, 't')).secret;
  };
  token = await mk('fay@uni.edu');
  other = await mk('gus@uni.edu');
});
afterAll(() => t.close());

async function submit(): Promise<string> {
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ dataset: { uri: 's3://gpulab-test/datasets/x' } }),
  });
  return ((await res.json()) as { id: string }).id;
}

/** Reads server-sent events until the stream ends, calling `onEvent` for each. */
function readEvents(url: string, headers: Record<string, string>, onEvent: (e: string) => void): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    http
      .get(url, { headers }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i = buf.indexOf('\n\n');
          while (i >= 0) {
            const e = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!e.startsWith(':')) {
              events.push(e);
              onEvent(e);
            }
            i = buf.indexOf('\n\n');
          }
        });
        res.on('end', () => resolve(events));
      })
      .on('error', reject);
  });
}

it('follows a running job live, in order, and ends when the job ends; Last-Event-ID resumes', async () => {
  const id = await submit();
  await logs.append(id, 1, 'Epoch 1/2 | Train Loss: 1.0000\n');
  const auth = { authorization: `Bearer ${token}` };
  let finished = false;
  const seen = readEvents(`${base}/v1/jobs/${id}/logs?follow=1`, auth, (e) => {
    if (e.includes('Epoch 1/2') && !finished) {
      finished = true;
      void (async () => {
        await logs.append(id, 1, 'Epoch 2/2 | Train Loss: 0.5000\nsecond line\n');
        await finishJob(db, { jobId: id, from: 'QUEUED', to: 'CANCELLED', reason: 'cancelled', at: new Date() });
      })();
    }
  });
  const events = await seen;
  expect(events).toHaveLength(3);
  expect(events[0]).toMatch(/^id: \d+-\d+\nevent: log\ndata: Epoch 1\/2/);
  expect(events[1]).toMatch(/data: Epoch 2\/2 \| Train Loss: 0\.5000\ndata: second line$/);
  expect(events[2]).toBe('event: end\ndata: {"status":"CANCELLED"}');

  const firstId = /^id: (\S+)/.exec(events[0]!)![1]!;
  const resumed = await readEvents(
    `${base}/v1/jobs/${id}/logs?follow=1`,
    { ...auth, 'last-event-id': firstId },
    () => {},
  );
  expect(resumed.map((e) => e.split('\n').find((l) => l.startsWith('event:')))).toEqual(['event: log', 'event: end']);

  const text = await (await fetch(`${base}/v1/jobs/${id}/logs`, { headers: auth })).text();
  expect(text).toBe('Epoch 1/2 | Train Loss: 1.0000\nEpoch 2/2 | Train Loss: 0.5000\nsecond line\n');
  expect((await fetch(`${base}/v1/jobs/${id}/logs`, { headers: { authorization: `Bearer ${other}` } })).status).toBe(
    404,
  );
});

it('serves the S3 archive once the live stream is gone', async () => {
  const id = await submit();
  await putObject(s3.client, s3.bucket, layout.logs(id, 1), Buffer.from('archived output\n'));
  const text = await (
    await fetch(`${base}/v1/jobs/${id}/logs?attempt=1`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  expect(text).toBe('archived output\n');
});
