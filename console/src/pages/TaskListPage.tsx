import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { Empty, ErrorBox, Loading, StatusBadge } from "../components/common";
import { useSession } from "../context";
import { usePageTitle } from "../hooks";
import { isAbort } from "../lib/api";
import { excerpt, formatTime, formatUsd } from "../lib/format";
import { ApiError, networkError } from "../lib/problem";
import { href, navigate } from "../lib/router";
import { questionAfterEvent } from "../lib/question";
import { FILTER_STATUSES, STATUS_LABELS, isTerminalEvent, laterStatus, statusAfterEvent } from "../lib/status";
import type { Task, TaskStatus, TimelineEvent } from "../lib/types";

const PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

function asStatus(value: string): TaskStatus | "" {
  return (FILTER_STATUSES as readonly string[]).includes(value) ? (value as TaskStatus) : "";
}

interface ListState {
  items: Task[];
  nextCursor: string | null;
  loading: boolean;
  loadingMore: boolean;
  error: ApiError | null;
  moreError: ApiError | null;
}

const INITIAL: ListState = { items: [], nextCursor: null, loading: true, loadingMore: false, error: null, moreError: null };

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : networkError(error);
}

export function TaskListPage({ status: rawStatus }: { status: string }) {
  const status = asStatus(rawStatus);
  const { api, live } = useSession();
  const heading = usePageTitle("Tasks");
  const [state, setState] = useState<ListState>(INITIAL);
  const itemsRef = useRef<Task[]>([]);
  itemsRef.current = state.items;
  const generation = useRef(0);

  /** Loads the first page again; after a reconnect, as many rows as are shown (up to 100). */
  const loadFirst = useCallback(
    (keepCount: boolean) => {
      const mine = ++generation.current;
      const limit = keepCount ? Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, itemsRef.current.length)) : PAGE_SIZE;
      setState((s) => (keepCount ? s : { ...INITIAL }));
      api.listTasks({ status, limit }).then(
        (page) => {
          if (mine !== generation.current) return;
          setState({ items: page.items, nextCursor: page.next_cursor, loading: false, loadingMore: false, error: null, moreError: null });
        },
        (err: unknown) => {
          if (mine !== generation.current || isAbort(err)) return;
          setState((s) => ({ ...s, loading: false, error: keepCount && s.items.length > 0 ? null : asApiError(err) }));
        },
      );
    },
    [api, status],
  );

  useEffect(() => {
    loadFirst(false);
    const loads = generation;
    return () => { loads.current++; }; // answers still on their way are dropped
  }, [loadFirst]);

  const loadMore = () => {
    const cursor = state.nextCursor;
    if (cursor === null) return;
    const mine = generation.current;
    setState((s) => ({ ...s, loadingMore: true, moreError: null }));
    api.listTasks({ status, limit: PAGE_SIZE, cursor }).then(
      (page) => {
        if (mine !== generation.current) return;
        setState((s) => {
          const seen = new Set(s.items.map((t) => t.id));
          return {
            ...s,
            items: [...s.items, ...page.items.filter((t) => !seen.has(t.id))],
            nextCursor: page.next_cursor,
            loadingMore: false,
          };
        });
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setState((s) => ({ ...s, loadingMore: false, moreError: asApiError(err) }));
      },
    );
  };

  // Live status of every task of the tenant, over the console's one WebSocket.
  useEffect(() => {
    const refreshRow = (id: string) => {
      api.getTask(id).then(
        (task) => {
          setState((s) => {
            const index = s.items.findIndex((t) => t.id === id);
            const shown = s.items[index];
            if (shown !== undefined) {
              // the record may lag the live events a moment: never show an older status
              const status = laterStatus(shown.status, task.status);
              const items = [...s.items];
              items[index] = status === task.status ? task : { ...task, status };
              return { ...s, items };
            }
            if (status !== "" && task.status !== status) return s;
            return { ...s, items: [task, ...s.items] };
          });
        },
        () => undefined, // the row keeps what the event said
      );
    };
    const onEvent = (event: TimelineEvent) => {
      const known = itemsRef.current.some((t) => t.id === event.task_id);
      if (!known) {
        // a new task (from here or elsewhere): show it if it fits the filter
        if (event.type === "task.submitted" && (status === "" || status === "queued")) refreshRow(event.task_id);
        return;
      }
      setState((s) => ({
        ...s,
        items: s.items.map((t) => {
          if (t.id !== event.task_id) return t;
          const next = statusAfterEvent(t.status, event.type);
          const current = t.question ?? null;
          const question = questionAfterEvent(current, event);
          if (next === t.status && question === current) return t;
          return { ...t, status: next, question, updated_at: event.occurred_at };
        }),
      }));
      if (isTerminalEvent(event.type)) refreshRow(event.task_id); // final usage and cost
    };
    return live.followAll({ onEvent, onResync: () => { loadFirst(true); } });
  }, [api, live, status, loadFirst]);

  return (
    <section class="page" aria-labelledby="tasks-title">
      <div class="page-head">
        <h1 id="tasks-title" ref={heading} tabIndex={-1}>Tasks</h1>
        <a class="button" href={href.newTask()} data-testid="new-task-link">New task</a>
      </div>
      <div class="toolbar">
        <label for="status-filter">Status</label>
        <select
          id="status-filter"
          value={status}
          onChange={(e) => { navigate(href.tasks(e.currentTarget.value), true); }}
          data-testid="status-filter"
        >
          <option value="">All</option>
          {FILTER_STATUSES.map((s) => (
            <option key={s} value={s}>{STATUS_LABELS[s]}</option>
          ))}
        </select>
        <button type="button" class="button secondary small" onClick={() => { loadFirst(false); }} data-testid="tasks-refresh">
          Refresh
        </button>
      </div>
      {state.loading ? (
        <Loading label="Loading tasks…" />
      ) : state.error ? (
        <ErrorBox error={state.error} onRetry={() => { loadFirst(false); }} />
      ) : state.items.length === 0 ? (
        <Empty testId="tasks-empty">
          {status === "" ? (
            <p>No tasks yet. <a href={href.newTask()}>Submit your first task.</a></p>
          ) : (
            <p>No {STATUS_LABELS[status].toLowerCase()} tasks. <a href={href.tasks()}>Show all tasks.</a></p>
          )}
        </Empty>
      ) : (
        <>
          <ul class="task-list" data-testid="task-list">
            {state.items.map((task) => <TaskRow key={task.id} task={task} />)}
          </ul>
          {state.moreError && <ErrorBox error={state.moreError} onRetry={loadMore} />}
          {state.nextCursor !== null ? (
            <button type="button" class="button secondary wide" onClick={loadMore} disabled={state.loadingMore} data-testid="tasks-load-more">
              {state.loadingMore ? "Loading…" : "Load more"}
            </button>
          ) : (
            <p class="muted end-of-list" data-testid="tasks-end">That is all of them.</p>
          )}
        </>
      )}
    </section>
  );
}

function TaskRow({ task }: { task: Task }) {
  const title = excerpt(task.prompt) || "(empty prompt)";
  return (
    <li class="task-row" data-testid="task-row" data-task-id={task.id} data-status={task.status}>
      <div class="task-row-main">
        <a href={href.task(task.id)} class="task-link" data-testid="task-link">{title}</a>
        <StatusBadge status={task.status} />
      </div>
      {task.status === "waiting_for_input" && task.question && (
        <p class="task-row-question" data-testid="task-question">
          <strong>Asks:</strong> {excerpt(task.question.text)}
        </p>
      )}
      <div class="task-row-meta muted">
        <span title={task.created_at}>{formatTime(task.created_at)}</span>
        <span>{task.model}</span>
        <span>{formatUsd(task.usage.cost_usd)}</span>
        <span class="mono short-id" title={task.id}>{task.id.slice(0, 8)}</span>
      </div>
    </li>
  );
}
