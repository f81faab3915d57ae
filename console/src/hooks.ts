import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { isAbort } from "./lib/api";
import { ApiError, networkError } from "./lib/problem";

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
  setData: (update: (current: T | null) => T | null) => void;
}

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : networkError(error);
}

/** Loads `load` when `key` changes (and on reload()), cancelling a load that is overtaken. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, key: string): Loaded<T> {
  const [data, setDataState] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    loadRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setDataState(value);
        setLoading(false);
      },
      (err: unknown) => {
        if (controller.signal.aborted || isAbort(err)) return;
        setError(asApiError(err));
        setLoading(false);
      },
    );
    return () => { controller.abort(); };
  }, [key, generation]);

  const reload = useCallback(() => { setGeneration((g) => g + 1); }, []);
  const setData = useCallback((update: (current: T | null) => T | null) => { setDataState(update); }, []);
  return { data, error, loading, reload, setData };
}

/** Runs an action (a button's), tracking busy and the error to show next to it. */
export function useAction(): {
  busy: boolean;
  error: ApiError | null;
  run: <R>(action: () => Promise<R>) => Promise<R | undefined>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  const run = useCallback(async <R,>(action: () => Promise<R>): Promise<R | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (err) {
      if (mounted.current) setError(asApiError(err));
      return undefined;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  const clear = useCallback(() => { setError(null); }, []);
  return { busy, error, run, clear };
}

/** Sets the document title and moves focus to the page's heading when the page changes. */
export function usePageTitle(title: string): (el: HTMLHeadingElement | null) => void {
  useEffect(() => {
    document.title = `${title} · Relay console`;
  }, [title]);
  return useCallback((el: HTMLHeadingElement | null) => {
    if (el && document.activeElement !== el && !el.contains(document.activeElement)) {
      // only when navigation left focus nowhere in particular (not while typing in a form)
      const active = document.activeElement;
      if (active === null || active === document.body || active.closest("nav") !== null) el.focus();
    }
  }, []);
}

/** A value that ticks every `ms` while `active` (live elapsed times). */
export function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(() => { setNow(Date.now()); }, ms);
    return () => { clearInterval(id); };
  }, [active, ms]);
  return now;
}
