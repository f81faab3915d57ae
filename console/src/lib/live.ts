// ONE WebSocket per signed-in console for every live view: the task list follows `*`, a task page
// follows its task with history. Each connection is authenticated by a fresh single-use ticket
// (POST /v1/ws-tickets), never by the key in a URL. After a drop it reconnects with backoff and a
// new ticket, subscribes again (tasks with `after` = the last seq received), and tells the views
// to catch up on anything else (re-fetching lists).
import { ApiError } from "./problem";
import {
  CLOSE,
  type ClientFrame,
  SUBSCRIBE_ALL,
  advance,
  attemptsAfterClose,
  describeClose,
  reconnectDelay,
  resubscribeFrames,
  subscribeFrame,
} from "./resume";
import { isTimelineEvent } from "./timeline";
import type { TimelineEvent } from "./types";

export type LiveState = "connecting" | "connected" | "reconnecting" | "stopped";

export interface LiveStatus {
  state: LiveState;
  /** Why the last connection ended (while reconnecting). */
  reason: string | null;
  /** When the next attempt is due (ms since epoch), while waiting to reconnect. */
  retryAt: number | null;
}

/** The part of a browser WebSocket this uses (tests pass a fake). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
}

const OPEN = 1;

export interface AllHandlers {
  onEvent(event: TimelineEvent): void;
  /** After a reconnect: live events may have been missed, re-fetch. */
  onResync?(): void;
}

export interface TaskHandlers {
  onEvent(event: TimelineEvent): void;
  /** The server's `end` frame: the task's timeline is complete. */
  onEnd(): void;
  /** An `error` frame the subscription cannot recover from (404: not the tenant's task). */
  onError(status: number, title: string, detail: string): void;
  /** After a reconnect (the timeline itself resumes by `after`). */
  onResync?(): void;
}

interface Follow {
  taskId: string;
  after: number;
  /** Events past a gap, waiting for the ones below them. */
  pending: Map<number, TimelineEvent>;
  ended: boolean;
  handlers: TaskHandlers;
}

export interface LiveOptions {
  /** A fresh ticket (POST /v1/ws-tickets). A 401 ApiError stops the connection for good. */
  ticket: () => Promise<string>;
  url: (ticket: string) => string;
  createSocket?: (url: string) => SocketLike;
  onStatus?: (status: LiveStatus) => void;
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** How long to wait before resubscribing after a 503 `error` frame for one subscription. */
  resubscribeDelayMs?: number;
}

export class LiveConnection {
  private readonly opts: Required<Omit<LiveOptions, "onStatus">> & Pick<LiveOptions, "onStatus">;
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempts = 0;
  private openedAt: number | null = null;
  private everOpened = false;
  private stopped = true;
  private readonly all = new Set<AllHandlers>();
  private readonly follows = new Map<string, Follow>();
  status: LiveStatus = { state: "stopped", reason: null, retryAt: null };

  constructor(options: LiveOptions) {
    this.opts = {
      createSocket: (url) => new WebSocket(url),
      random: Math.random,
      now: Date.now,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>); },
      resubscribeDelayMs: 2_000,
      ...options,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  /** Closes for good (sign-out). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(CLOSE.NORMAL, "signed out");
    }
    this.setStatus({ state: "stopped", reason: null, retryAt: null });
  }

  /** Reconnect at once instead of waiting out the backoff (the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.socket !== null) return;
    this.clearTimer();
    void this.connect();
  }

  /** Live events of every task of the tenant (no history). Returns the unsubscribe function. */
  followAll(handlers: AllHandlers): () => void {
    const first = this.all.size === 0;
    this.all.add(handlers);
    if (first) this.send(SUBSCRIBE_ALL);
    return () => {
      if (!this.all.delete(handlers)) return;
      if (this.all.size === 0) this.send({ type: "unsubscribe", task_id: "*" });
    };
  }

  /**
   * One task's timeline: the events after `after`, then live, resumed after drops. Returns the
   * unsubscribe function. Following a task that is already followed replaces its handlers.
   */
  followTask(taskId: string, after: number, handlers: TaskHandlers): () => void {
    const existing = this.follows.get(taskId);
    if (existing && !existing.ended) this.send({ type: "unsubscribe", task_id: taskId });
    const follow: Follow = { taskId, after, pending: new Map(), ended: false, handlers };
    this.follows.set(taskId, follow);
    this.send(subscribeFrame(taskId, after));
    return () => {
      if (this.follows.get(taskId) !== follow) return;
      this.follows.delete(taskId);
      if (!follow.ended) this.send({ type: "unsubscribe", task_id: taskId });
    };
  }

  // --- connection

  private async connect(): Promise<void> {
    this.timer = null;
    this.setStatus({
      state: this.everOpened ? "reconnecting" : "connecting",
      reason: this.status.reason,
      retryAt: null,
    });
    let ticket: string;
    try {
      ticket = await this.opts.ticket();
    } catch (error) {
      if (this.stopped) return;
      if (error instanceof ApiError && error.status === 401) {
        this.stop(); // the key is no longer valid; the API client signs out
        return;
      }
      const reason = error instanceof ApiError ? `no ticket: ${error.summary}` : "no ticket";
      this.attempts = attemptsAfterClose(this.attempts, null);
      this.scheduleReconnect(null, reason);
      return;
    }
    if (this.stopped) return;
    let socket: SocketLike;
    try {
      socket = this.opts.createSocket(this.opts.url(ticket));
    } catch {
      this.attempts = attemptsAfterClose(this.attempts, null);
      this.scheduleReconnect(null, describeClose(null));
      return;
    }
    this.socket = socket;
    this.openedAt = null;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.onOpen();
    };
    socket.onmessage = (event: MessageEvent) => {
      if (socket !== this.socket) return;
      if (typeof event.data === "string") this.onFrame(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      if (socket !== this.socket) return;
      this.socket = null;
      const openMs = this.openedAt === null ? null : this.opts.now() - this.openedAt;
      this.openedAt = null;
      if (this.stopped) return;
      this.attempts = attemptsAfterClose(this.attempts, openMs);
      this.scheduleReconnect(event.code, describeClose(event.code));
    };
    socket.onerror = () => undefined; // a close event follows; it decides
  }

  private onOpen(): void {
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.openedAt = this.opts.now();
    this.setStatus({ state: "connected", reason: null, retryAt: null });
    for (const frame of resubscribeFrames(this.all.size > 0, this.follows.values())) this.send(frame);
    if (reconnected) {
      for (const handlers of [...this.all]) handlers.onResync?.();
      for (const follow of [...this.follows.values()]) follow.handlers.onResync?.();
    }
  }

  private scheduleReconnect(code: number | null, reason: string): void {
    const delay = reconnectDelay(Math.max(0, this.attempts - 1), code, this.opts.random);
    this.setStatus({
      state: this.everOpened ? "reconnecting" : "connecting",
      reason,
      retryAt: this.opts.now() + delay,
    });
    this.clearTimer();
    this.timer = this.opts.setTimer(() => void this.connect(), delay);
  }

  private clearTimer(): void {
    if (this.timer !== null) this.opts.clearTimer(this.timer);
    this.timer = null;
  }

  private send(frame: ClientFrame): void {
    const socket = this.socket;
    // Not open yet: the subscription is sent (again) when the connection opens.
    if (socket?.readyState !== OPEN || this.openedAt === null) return;
    socket.send(JSON.stringify(frame));
  }

  private setStatus(status: LiveStatus): void {
    this.status = status;
    this.opts.onStatus?.(status);
  }

  // --- frames

  private onFrame(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (isTimelineEvent(frame)) {
      this.onEvent(frame);
      return;
    }
    if (typeof frame !== "object" || frame === null) return;
    const control = frame as { type?: unknown; task_id?: unknown; status?: unknown; title?: unknown; detail?: unknown };
    const taskId = typeof control.task_id === "string" ? control.task_id : null;
    if (control.type === "end" && taskId !== null) {
      const follow = this.follows.get(taskId);
      if (follow && !follow.ended) {
        follow.ended = true;
        follow.handlers.onEnd();
      }
    } else if (control.type === "error") {
      const status = typeof control.status === "number" ? control.status : 0;
      const title = typeof control.title === "string" ? control.title : "Error";
      const detail = typeof control.detail === "string" ? control.detail : "";
      this.onError(taskId, status, title, detail);
    }
  }

  private onEvent(event: TimelineEvent): void {
    const follow = this.follows.get(event.task_id);
    if (follow) {
      for (const next of advance(follow, event)) follow.handlers.onEvent(next);
    }
    for (const handlers of [...this.all]) handlers.onEvent(event);
  }

  private onError(taskId: string | null, status: number, title: string, detail: string): void {
    if (status === 409) return; // "already subscribed": it is
    const retriable = status === 503 || status === 429 || status >= 500;
    if (taskId === "*") {
      if (retriable) this.later(() => { if (this.all.size > 0) this.send(SUBSCRIBE_ALL); });
      return;
    }
    if (taskId === null) return;
    const follow = this.follows.get(taskId);
    if (!follow || follow.ended) return;
    if (retriable) {
      // the subscription broke off (e.g. the database is away): resume where it stopped
      this.later(() => {
        if (this.follows.get(taskId) === follow && !follow.ended) this.send(subscribeFrame(taskId, follow.after));
      });
      return;
    }
    this.follows.delete(taskId);
    follow.handlers.onError(status, title, detail);
  }

  private later(fn: () => void): void {
    this.opts.setTimer(fn, this.opts.resubscribeDelayMs);
  }
}
