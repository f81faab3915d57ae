// Pure parts of staying connected: how long to wait before reconnecting, what a close code
// means, the frames that restore a connection's subscriptions, and where a task resumes.

/** Close codes of /v1/ws (README, *Live updates over WebSocket*). */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHENTICATED: 4401,
} as const;

export const MAX_RECONNECT_DELAY_MS = 30_000;
/** A connection that stayed up this long counts as healthy: the next drop starts from a short wait. */
export const HEALTHY_CONNECTION_MS = 10_000;

/**
 * Milliseconds to wait before reconnect attempt `attempt` (0 = the first after a drop).
 * Exponential with "equal jitter" (half fixed, half random) so that many consoles dropped by one
 * restart do not come back in lockstep. A service restart (1012) is retried soonest; "try again
 * later" (1013: too slow a reader, or a service it needs is down) starts from a longer wait.
 */
export function reconnectDelay(attempt: number, closeCode: number | null, random: () => number = Math.random): number {
  const base = closeCode === CLOSE.SERVICE_RESTART ? 250 : closeCode === CLOSE.TRY_AGAIN_LATER ? 2_000 : 500;
  const ceiling = Math.min(MAX_RECONNECT_DELAY_MS, base * 2 ** Math.max(0, Math.min(attempt, 16)));
  const half = ceiling / 2;
  return Math.round(half + random() * half);
}

/** The attempt counter after a connection that was open `openMs` closes (null: it never opened). */
export function attemptsAfterClose(attempts: number, openMs: number | null): number {
  if (openMs !== null && openMs >= HEALTHY_CONNECTION_MS) return 0;
  return attempts + 1;
}

/** Why a connection closed, in words for the connection indicator's tooltip. */
export function describeClose(code: number | null): string {
  switch (code) {
    case null:
      return "could not connect";
    case CLOSE.SERVICE_RESTART:
      return "the service restarted";
    case CLOSE.TRY_AGAIN_LATER:
      return "the service asked to try again later";
    case CLOSE.ABNORMAL:
      return "the connection dropped";
    case CLOSE.UNAUTHENTICATED:
      return "the ticket was refused";
    case CLOSE.INTERNAL_ERROR:
      return "the connection stopped answering";
    case CLOSE.GOING_AWAY:
      return "the server is going away";
    default:
      return `closed (${code})`;
  }
}

export interface TaskFollow {
  taskId: string;
  /** Highest seq received with nothing missing below it. */
  after: number;
  /** The server said `end` (or the task's terminal event came): nothing more to resume. */
  ended: boolean;
}

export type ClientFrame =
  | { type: "subscribe"; task_id: string; after?: number }
  | { type: "unsubscribe"; task_id: string }
  | { type: "ping" };

export function subscribeFrame(taskId: string, after: number): ClientFrame {
  return { type: "subscribe", task_id: taskId, after };
}

export const SUBSCRIBE_ALL: ClientFrame = { type: "subscribe", task_id: "*" };

/**
 * The frames that restore subscriptions on a fresh connection: `*` (live only, no history) when
 * anything listens to every task, and each followed task that has not ended, after the last seq
 * it has without a gap, so the server sends exactly what was missed.
 */
export function resubscribeFrames(followAll: boolean, tasks: Iterable<TaskFollow>): ClientFrame[] {
  const frames: ClientFrame[] = [];
  if (followAll) frames.push(SUBSCRIBE_ALL);
  for (const follow of tasks) {
    if (!follow.ended) frames.push(subscribeFrame(follow.taskId, follow.after));
  }
  return frames;
}

/**
 * Passes a followed task's events on in seq order, each once. An event past a gap (a live event
 * of the `*` subscription can overtake the task subscription's history) waits in `pending` until
 * the events below it have come; `after` is the highest seq passed on, what a resubscribe resumes
 * after. Returns the events to pass on now, in seq order (none for a duplicate).
 */
export function advance<E extends { seq: number }>(
  follow: { after: number; pending: Map<number, E> },
  event: E,
): E[] {
  if (event.seq <= follow.after || follow.pending.has(event.seq)) return [];
  if (event.seq !== follow.after + 1) {
    follow.pending.set(event.seq, event);
    return [];
  }
  const released = [event];
  follow.after = event.seq;
  for (let next = follow.pending.get(follow.after + 1); next !== undefined; next = follow.pending.get(follow.after + 1)) {
    follow.pending.delete(next.seq);
    released.push(next);
    follow.after = next.seq;
  }
  return released;
}

/** The URL of the WebSocket on this page's origin (ws: for http:, wss: for https:). */
export function wsUrl(origin: string, ticket: string): string {
  return `${origin.replace(/^http/, "ws")}/v1/ws?ticket=${encodeURIComponent(ticket)}`;
}
