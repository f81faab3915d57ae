import { Fragment } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ConfirmButton, Empty, ErrorBox, Loading, StatusBadge } from "../components/common";
import { useSession } from "../context";
import { useAction, useLoad, useNow, usePageTitle } from "../hooks";
import {
  budgetLine,
  elapsedSeconds,
  formatDuration,
  formatInt,
  formatTime,
  formatUsd,
} from "../lib/format";
import { href, isUuid } from "../lib/router";
import { pendingQuestion, secondsWaiting, shownStatus } from "../lib/question";
import { isTerminal, recordBehind, statusFromEvents } from "../lib/status";
import {
  EMPTY_TIMELINE,
  type Timeline,
  describeEvent,
  liveUsage,
  markEnded,
  mergeEvents,
  stepsOfLatestAttempt,
} from "../lib/timeline";
import type { Task, TaskStatus, TimelineEvent } from "../lib/types";
import { AnswerBox } from "./AnswerBox";
import { ArtifactsPanel } from "./ArtifactsPanel";
import { TaskNotFound } from "./NotFoundPage";

export function TaskPage({ id }: { id: string }) {
  // Not even a task id: the same page as a task that does not exist (or is another tenant's).
  if (!isUuid(id)) return <TaskNotFound id={id} />;
  return <TaskView id={id} />;
}

type LiveTimeline = Timeline & { subscribed: boolean; problem: string | null };

function TaskView({ id }: { id: string }) {
  const { api, live, liveStatus } = useSession();
  const task = useLoad((signal) => api.getTask(id, signal), id);
  const [timeline, setTimeline] = useState<LiveTimeline>({ ...EMPTY_TIMELINE, subscribed: false, problem: null });
  const [hidden, setHidden] = useState(false);
  const [artifactsVersion, setArtifactsVersion] = useState(0);
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lagRetries = useRef(0);
  const { setData: setTask } = task;
  // What the timeline says, for a record that has not caught up with it yet (see below).
  const timelineStatus = useRef<TaskStatus>("queued");
  timelineStatus.current = statusFromEvents(timeline.events);

  /**
   * Re-reads the task (usage, status, result) shortly after events, at most every 400 ms. The
   * record may lag the timeline a moment (the tasks service applies the same events from its own
   * queue): while it has not caught up with a finish or a question the timeline saw, it is read
   * again (up to 10 times in a row) to get the result, the final usage or the question.
   */
  const scheduleRefresh = useCallback(
    (delay = 400) => {
      if (refreshTimer.current !== null) return;
      refreshTimer.current = setTimeout(() => {
        refreshTimer.current = null;
        api.getTask(id).then(
          (fresh) => {
            setTask(() => fresh);
            if (!recordBehind(timelineStatus.current, fresh.status)) {
              lagRetries.current = 0;
            } else if (lagRetries.current < 10) {
              lagRetries.current++;
              scheduleRefresh(1000);
            }
          },
          () => undefined,
        );
      }, delay);
    },
    [api, id, setTask],
  );

  useEffect(() => () => { if (refreshTimer.current !== null) clearTimeout(refreshTimer.current); }, []);

  // The live timeline: history from seq 1, then live; after a drop the connection resubscribes
  // with `after` = the last seq received, so nothing is missed or repeated.
  useEffect(() => {
    const onEvent = (event: TimelineEvent) => {
      setTimeline((t) => {
        const merged = mergeEvents(t, [event]);
        return merged === t && t.subscribed ? t : { ...t, ...merged, subscribed: true, problem: null };
      });
      if (event.type === "artifact.published") setArtifactsVersion((v) => v + 1);
      scheduleRefresh();
    };
    return live.followTask(id, 0, {
      onEvent,
      onEnd: () => {
        setTimeline((t) => ({ ...t, ...markEnded(t), subscribed: true }));
        scheduleRefresh();
      },
      onError: (status, title, detail) => {
        if (status === 404) setHidden(true);
        else setTimeline((t) => ({ ...t, problem: `${title}${detail ? `: ${detail}` : ""}` }));
      },
      onResync: () => {
        scheduleRefresh(0);
        setArtifactsVersion((v) => v + 1);
      },
    });
  }, [id, live, setTask, scheduleRefresh]);

  if (hidden || task.error?.status === 404) return <TaskNotFound id={id} />;
  if (task.data === null) {
    return (
      <section class="page">
        <h1>Task</h1>
        {task.error ? <ErrorBox error={task.error} onRetry={task.reload} /> : <Loading label="Loading the task…" />}
      </section>
    );
  }
  return (
    <TaskDetails
      task={shownTask(task.data, timeline.events)}
      timeline={timeline}
      reconnecting={liveStatus.state !== "connected"}
      artifactsVersion={artifactsVersion}
      onTask={(t) => { setTask(() => t); }}
      reload={task.reload}
    />
  );
}

/** The task with the status its timeline implies when that is further along than the record's. */
function shownTask(task: Task, events: readonly TimelineEvent[]): Task {
  const status = shownStatus(task, events);
  return status === task.status ? task : { ...task, status };
}

function TaskDetails({
  task,
  timeline,
  reconnecting,
  artifactsVersion,
  onTask,
  reload,
}: {
  task: Task;
  timeline: LiveTimeline;
  reconnecting: boolean;
  artifactsVersion: number;
  onTask: (task: Task) => void;
  reload: () => void;
}) {
  const heading = usePageTitle(`Task ${task.id.slice(0, 8)}`);
  return (
    <article class="page task-page" data-testid="task-page" data-task-id={task.id} data-status={task.status}>
      <div class="page-head">
        <div>
          <p class="crumbs"><a href={href.tasks()}>Tasks</a> /</p>
          <h1 ref={heading} tabIndex={-1}>
            Task <span class="mono">{task.id.slice(0, 8)}</span>
          </h1>
        </div>
        <div class="head-actions">
          <StatusBadge status={task.status} />
          <CancelControl task={task} onTask={onTask} reload={reload} />
        </div>
      </div>

      <Outcome task={task} />
      <AnswerBox task={task} question={pendingQuestion(task, timeline.events)} onTask={onTask} reload={reload} />

      <div class="columns">
        <div class="column-main">
          <TimelineSection timeline={timeline} reconnecting={reconnecting} terminal={isTerminal(task.status)} />
          <ArtifactsPanel taskId={task.id} version={artifactsVersion} />
        </div>
        <div class="column-side">
          <UsagePanel task={task} events={timeline.events} />
          <DetailsPanel task={task} />
        </div>
      </div>
    </article>
  );
}

function CancelControl({ task, onTask, reload }: { task: Task; onTask: (task: Task) => void; reload: () => void }) {
  const { api } = useSession();
  const action = useAction();
  const [note, setNote] = useState<string | null>(null);
  if (isTerminal(task.status)) return null;
  const cancel = async () => {
    setNote(null);
    const result = await action.run(() => api.cancelTask(task.id));
    if (result) {
      onTask(result);
      setNote("Cancel requested.");
    }
  };
  const finished = action.error?.status === 409;
  return (
    <div class="cancel-control">
      {task.status === "cancelling" ? (
        <span class="muted" data-testid="cancel-pending">Cancelling…</span>
      ) : (
        <ConfirmButton
          label="Cancel task"
          question="Cancel this task?"
          confirmLabel="Yes, cancel it"
          onConfirm={() => void cancel()}
          busy={action.busy}
          danger
          testId="cancel-task"
        />
      )}
      <span role="status" class="muted">{note}</span>
      {action.error && (
        <div class="error-inline" role="alert" data-testid="cancel-error">
          {finished ? "The task has already finished." : action.error.summary}{" "}
          {finished && (
            <button type="button" class="link-button" onClick={reload}>Refresh</button>
          )}
        </div>
      )}
    </div>
  );
}

function Outcome({ task }: { task: Task }) {
  if (task.result) {
    return (
      <section class="outcome good" aria-label="Result" data-testid="task-result">
        <h2>Result</h2>
        <p class="pre-wrap">{task.result.summary}</p>
      </section>
    );
  }
  if (task.error) {
    return (
      <section class="outcome bad" aria-label="Error" data-testid="task-error">
        <h2>
          Failed: <code>{task.error.code}</code>
          {task.error.budget ? <> (budget <code>{task.error.budget}</code>)</> : null}
        </h2>
        <p class="pre-wrap">{task.error.message}</p>
      </section>
    );
  }
  return null;
}

function TimelineSection({ timeline, reconnecting, terminal }: { timeline: LiveTimeline; reconnecting: boolean; terminal: boolean }) {
  const state = timeline.ended ? "ended" : reconnecting ? "reconnecting" : timeline.subscribed ? "live" : "connecting";
  const label = {
    ended: "Complete",
    reconnecting: "Reconnecting… the timeline resumes where it stopped",
    live: "Following live",
    connecting: "Connecting…",
  }[state];
  const first = timeline.events[0];
  const start = first ? Date.parse(first.occurred_at) : NaN;
  return (
    <section class="card" aria-labelledby="timeline-title">
      <div class="card-head">
        <h2 id="timeline-title">Timeline</h2>
        <span class={`timeline-state state-${state}`} data-testid="timeline-state" data-state={state} role="status">
          {label}
        </span>
      </div>
      {timeline.problem && (
        <p class="error-inline" role="alert">{timeline.problem}</p>
      )}
      {timeline.events.length === 0 ? (
        state === "ended" || terminal ? (
          <Empty testId="timeline-empty"><p>No events.</p></Empty>
        ) : (
          <Loading label="Waiting for events…" />
        )
      ) : (
        <ol class="timeline" data-testid="timeline" aria-live="polite" aria-relevant="additions">
          {timeline.events.map((event) => {
            const text = describeEvent(event);
            const at = Date.parse(event.occurred_at);
            const offset = Number.isNaN(at) || Number.isNaN(start) ? "" : `+${((at - start) / 1000).toFixed(1)} s`;
            return (
              <li key={event.seq} class={`timeline-entry tone-${text.tone}`} data-testid="timeline-entry" data-seq={event.seq} data-type={event.type}>
                <span class="seq" aria-label={`event ${event.seq}`}>{event.seq}</span>
                <div class="timeline-body">
                  <div class="timeline-line">
                    <strong>{text.label}</strong>
                    <time dateTime={event.occurred_at} title={formatTime(event.occurred_at)} class="muted">{offset}</time>
                  </div>
                  {text.detail && <p class="timeline-detail">{text.detail}</p>}
                </div>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}

function Budget({ label, used, limit, format, testId }: { label: string; used: number; limit: number | null | undefined; format: (n: number) => string; testId: string }) {
  const line = budgetLine(used, limit, format);
  const id = `budget-${testId}`;
  return (
    <div class={`budget${line.exhausted ? " exhausted" : ""}`} data-testid={`budget-${testId}`}>
      <div class="budget-line">
        <span id={id}>{label}</span>
        <span class="budget-value">{line.text}</span>
      </div>
      {line.percent !== null && <progress max={100} value={line.percent} aria-labelledby={id} />}
    </div>
  );
}

function UsagePanel({ task, events }: { task: Task; events: readonly TimelineEvent[] }) {
  const running = task.started_at !== null && task.finished_at === null;
  const now = useNow(running);
  // waiting for an answer is not wall time (the budget counts running only)
  const finished = task.finished_at === null ? now : Date.parse(task.finished_at);
  const wall = Math.max(0, (elapsedSeconds(task.started_at, task.finished_at, now) ?? 0) - secondsWaiting(events, finished));
  const steps = stepsOfLatestAttempt(events);
  const u = isTerminal(task.status) ? task.usage : liveUsage(task.usage, events);
  const limits = task.limits;
  return (
    <section class="card" aria-labelledby="usage-title" data-testid="usage">
      <h2 id="usage-title">Usage and budgets</h2>
      <Budget label="Cost (estimated)" used={u.cost_usd} limit={limits?.max_cost_usd} format={formatUsd} testId="cost" />
      <Budget label="Output tokens" used={u.output_tokens} limit={limits?.max_output_tokens} format={formatInt} testId="output-tokens" />
      <Budget label="Steps (model turns)" used={steps} limit={limits?.max_turns} format={formatInt} testId="turns" />
      <Budget label="Wall time" used={wall} limit={limits?.max_wall_seconds} format={formatDuration} testId="wall" />
      <dl class="kv compact">
        <dt>Input tokens</dt>
        <dd>{formatInt(u.input_tokens)}</dd>
        <dt>Cache writes</dt>
        <dd>{formatInt(u.cache_creation_input_tokens)}</dd>
        <dt>Cache reads</dt>
        <dd>{formatInt(u.cache_read_input_tokens)}</dd>
      </dl>
      {limits === null && <p class="hint">This task is from before budgets: it has no limits.</p>}
    </section>
  );
}

function DetailsPanel({ task }: { task: Task }) {
  const metadata = Object.entries(task.metadata);
  return (
    <section class="card" aria-labelledby="details-title" data-testid="task-details">
      <h2 id="details-title">Details</h2>
      <dl class="kv">
        <dt>ID</dt>
        <dd class="mono break" data-testid="task-id">{task.id}</dd>
        <dt>Model</dt>
        <dd>{task.model}</dd>
        <dt>Created</dt>
        <dd>{formatTime(task.created_at)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(task.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(task.finished_at)}</dd>
      </dl>
      <h3>Prompt</h3>
      <pre class="prompt" data-testid="task-prompt">{task.prompt}</pre>
      <h3>Metadata</h3>
      {metadata.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <dl class="kv" data-testid="task-metadata">
          {metadata.map(([k, v]) => (
            <Fragment key={k}>
              <dt class="break">{k}</dt>
              <dd class="break">{v}</dd>
            </Fragment>
          ))}
        </dl>
      )}
    </section>
  );
}
