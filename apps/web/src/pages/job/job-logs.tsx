import { isTerminal, type JobStatus } from '@gpulab/core/src/status';
import { useEffect, useRef, useState } from 'react';
import { client, errorMessage } from '../../api/client';

const MAX_CHARS = 200_000;

/**
 * The trainer's output. While the job runs it is followed live through server-sent events (GET …/logs?follow=1):
 * the browser's EventSource sends the cookie and, after a dropped connection, resumes from the last event id, so
 * nothing is shown twice; the stream's `end` event closes it. A job that has ended shows its archived text.
 */
export function JobLogs({ jobId, status }: { jobId: string; status: JobStatus }) {
  const [text, setText] = useState('');
  const [state, setState] = useState<'loading' | 'live' | 'ended' | 'error'>('loading');
  const [error, setError] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const ended = isTerminal(status);
  // Once following, keep the stream through the end (it ends itself); only a job already over at mount is fetched.
  const mode = useRef<'follow' | 'fetch' | null>(null);
  if (mode.current === null) mode.current = ended ? 'fetch' : 'follow';

  useEffect(() => {
    if (mode.current === 'fetch') {
      let live = true;
      client.jobs
        .logs(jobId)
        .then((t) => {
          if (!live) return;
          setText(t);
          setState('ended');
        })
        .catch((e) => {
          if (!live) return;
          setError(errorMessage(e));
          setState('error');
        });
      return () => {
        live = false;
      };
    }
    const es = new EventSource(`/v1/jobs/${encodeURIComponent(jobId)}/logs?follow=1`, { withCredentials: true });
    es.onopen = () => setState('live');
    es.addEventListener('log', (e) => {
      const chunk = `${(e as MessageEvent<string>).data}\n`;
      setText((t) => (t.length + chunk.length > MAX_CHARS ? (t + chunk).slice(-MAX_CHARS) : t + chunk));
    });
    es.addEventListener('end', () => {
      es.close();
      setState('ended');
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        setError('the log stream closed');
        setState('error');
      }
    };
    return () => es.close();
  }, [jobId]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll when new text arrives
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  const label = { loading: 'connecting…', live: 'live', ended: 'complete', error: 'unavailable' }[state];
  return (
    <section aria-labelledby="logs-h">
      <div className="section-head">
        <h2 id="logs-h">
          Logs <span className={`pill ${state}`}>{label}</span>
        </h2>
        <label className="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Scroll to the newest
          line
        </label>
      </div>
      {error ? <p className="note warn">{error}</p> : null}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard */}
      <pre className="logs" ref={pre} tabIndex={0} role="log" aria-label="Job output" aria-live="off">
        {text || (state === 'loading' ? '' : 'No output yet.')}
      </pre>
    </section>
  );
}
