import { useCallback, useEffect, useRef, useState } from 'react';
import { noteError } from '../api/client';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads data and, when `every` says so, polls it: `every(data)` is the next delay in ms, or null to stop (a finished
 * job stops polling). Polling pauses while the tab is hidden and resumes when it is shown. Results of a superseded
 * load (the inputs changed meanwhile) are dropped.
 */
export function useResource<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  every?: (data: T | undefined) => number | null,
): Resource<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const everyRef = useRef(every);
  everyRef.current = every;

  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's deps decide when to reload
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      let data: T | undefined;
      try {
        data = await loadRef.current();
        if (!live) return;
        setState({ data, error: null, loading: false });
      } catch (e) {
        if (!live) return;
        noteError(e);
        setState((s) => ({ data: s.data, error: e, loading: false }));
      }
      const delay = everyRef.current?.(data);
      if (live && delay != null) timer = setTimeout(wait, delay);
    };
    const wait = () => {
      if (!live) return;
      if (document.hidden) document.addEventListener('visibilitychange', wait, { once: true });
      else void run();
    };
    setState((s) => ({ ...s, loading: true }));
    void run();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
      document.removeEventListener('visibilitychange', wait);
    };
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
