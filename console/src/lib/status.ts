// Task statuses and how live events move them.
import type { TaskStatus } from "./types";

/** What the status filter offers: the statuses GET /v1/tasks accepts (openapi.json). */
export const FILTER_STATUSES: readonly TaskStatus[] = [
  "queued",
  "running",
  "waiting_for_input",
  "cancelling",
  "succeeded",
  "failed",
  "cancelled",
];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(["succeeded", "failed", "cancelled"]);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export const STATUS_LABELS: Record<TaskStatus, string> = {
  queued: "Queued",
  running: "Running",
  waiting_for_input: "Waiting for input",
  cancelling: "Cancelling",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};

const TERMINAL_EVENTS: Record<string, TaskStatus> = {
  "task.succeeded": "succeeded",
  "task.failed": "failed",
  "task.cancelled": "cancelled",
};

export function isTerminalEvent(type: string): boolean {
  return type in TERMINAL_EVENTS;
}

/**
 * The status a task has after one of its events, given the status shown now. Never moves a task
 * backwards: a terminal status is final, and a late `task.progressed` does not undo
 * `cancelling`. Events that say nothing about the status (artifacts) keep it.
 */
export function statusAfterEvent(current: TaskStatus, type: string): TaskStatus {
  if (isTerminal(current)) return current;
  const terminal = TERMINAL_EVENTS[type];
  if (terminal !== undefined) return terminal;
  switch (type) {
    case "task.submitted":
      return current;
    case "task.started":
    case "task.progressed":
    case "task.input_provided":
      return current === "cancelling" ? current : "running";
    case "task.input_requested":
      return current === "cancelling" ? current : "waiting_for_input";
    case "task.cancel_requested":
      return "cancelling";
    default:
      return current;
  }
}

const RANK: Record<TaskStatus, number> = {
  queued: 0,
  running: 1,
  waiting_for_input: 1,
  cancelling: 2,
  succeeded: 3,
  failed: 3,
  cancelled: 3,
};

/**
 * The status to show when a freshly fetched task meets what live events already said. The task
 * record can lag the timeline by a moment (the tasks service applies the same events on its own
 * queue), so a fetch must not move the status backwards: a task the timeline saw finish stays
 * finished even if the fetch still says running.
 */
export function laterStatus(shown: TaskStatus, fetched: TaskStatus): TaskStatus {
  return RANK[fetched] >= RANK[shown] ? fetched : shown;
}

/**
 * A freshly fetched task record has not caught up with what its timeline already shows: a
 * finish, or a question (the tasks service applies the same events from its own queue).
 */
export function recordBehind(timeline: TaskStatus, fetched: TaskStatus): boolean {
  if (isTerminal(timeline)) return !isTerminal(fetched);
  return timeline === "waiting_for_input" && RANK[fetched] <= RANK[timeline] && fetched !== timeline;
}

/** The status a task's timeline implies on its own (from `queued`, event by event). */
export function statusFromEvents(events: readonly { type: string }[]): TaskStatus {
  return events.reduce<TaskStatus>((status, event) => statusAfterEvent(status, event.type), "queued");
}
