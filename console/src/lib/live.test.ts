import { describe, expect, it } from "vitest";
import { LiveConnection, type LiveStatus, type SocketLike, type TaskHandlers } from "./live";
import { ApiError } from "./problem";
import type { TimelineEvent } from "./types";

const TASK = "0b5c6a1e-4a39-4d7c-9d0e-6f1f1c0a1b2c";
const OTHER = "9d2f8e77-0000-4c1a-8a55-3f3d2b1a0c9e";

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: unknown[] = [];
  closed: { code?: number } | null = null;
  onopen: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  constructor(readonly url: string) {}
  send(data: string) { this.sent.push(JSON.parse(data)); }
  close(code?: number) { this.closed = { code }; this.readyState = 3; }
  // server side
  open() { this.readyState = 1; this.onopen?.({} as Event); }
  receive(frame: unknown) { this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent); }
  drop(code: number) { this.readyState = 3; this.onclose?.({ code } as CloseEvent); }
}

/** A LiveConnection on fake sockets, fake timers and a fake clock. */
function harness(options: { ticket?: () => Promise<string> } = {}) {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; at: number; id: number }[] = [];
  const statuses: LiveStatus[] = [];
  let now = 1_000_000;
  let tickets = 0;
  let nextId = 1;
  const live = new LiveConnection({
    ticket: options.ticket ?? (() => Promise.resolve(`rlt_${++tickets}`)),
    url: (ticket) => `ws://test/v1/ws?ticket=${ticket}`,
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    onStatus: (s) => statuses.push(s),
    random: () => 1,
    now: () => now,
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.push({ fn, at: now + ms, id });
      return id;
    },
    clearTimer: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    resubscribeDelayMs: 2000,
  });
  const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  /** Advances the clock by ms, firing due timers, then lets promises settle. */
  const advance = async (ms: number) => {
    now += ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const due = timers[0];
      if (!due || due.at > now) break;
      timers.shift();
      due.fn();
      await flush();
    }
    await flush();
  };
  const last = () => {
    const s = sockets[sockets.length - 1];
    if (!s) throw new Error("no socket");
    return s;
  };
  return { live, sockets, statuses, timers, flush, advance, last, elapse: (ms: number) => { now += ms; } };
}

function ev(seq: number, type = "task.progressed", taskId = TASK): TimelineEvent {
  return { type, seq, task_id: taskId, occurred_at: "2026-01-01T00:00:00Z", data: {} };
}

function recorder() {
  const events: number[] = [];
  const log: string[] = [];
  const handlers: TaskHandlers = {
    onEvent: (e) => events.push(e.seq),
    onEnd: () => log.push("end"),
    onError: (status) => log.push(`error ${status}`),
    onResync: () => log.push("resync"),
  };
  return { events, log, handlers };
}

describe("LiveConnection", () => {
  it("connects with a fresh ticket and subscribes once open", async () => {
    const h = harness();
    h.live.followAll({ onEvent: () => undefined });
    h.live.followTask(TASK, 0, recorder().handlers);
    h.live.start();
    await h.flush();
    expect(h.last().url).toBe("ws://test/v1/ws?ticket=rlt_1");
    expect(h.live.status.state).toBe("connecting");
    expect(h.last().sent).toEqual([]); // nothing before open
    h.last().open();
    expect(h.live.status.state).toBe("connected");
    expect(h.last().sent).toEqual([
      { type: "subscribe", task_id: "*" },
      { type: "subscribe", task_id: TASK, after: 0 },
    ]);
  });

  it("after a drop reconnects with a new ticket and resumes after the last seq received", async () => {
    const h = harness();
    const r = recorder();
    h.live.start();
    await h.flush();
    h.last().open();
    h.live.followTask(TASK, 0, r.handlers);
    expect(h.last().sent).toEqual([{ type: "subscribe", task_id: TASK, after: 0 }]);
    h.last().receive({ type: "subscribed", task_id: TASK });
    for (const seq of [1, 2, 3]) h.last().receive(ev(seq));

    h.last().drop(1006);
    expect(h.live.status.state).toBe("reconnecting");
    expect(h.live.status.reason).toMatch(/dropped/);
    await h.advance(500);
    expect(h.sockets).toHaveLength(2);
    expect(h.last().url).toContain("ticket=rlt_2"); // tickets are single use
    h.last().open();
    expect(h.last().sent).toEqual([{ type: "subscribe", task_id: TASK, after: 3 }]);
    expect(r.log).toEqual(["resync"]);

    // the server sends what came after 3; a late duplicate is not passed on twice
    h.last().receive(ev(3));
    h.last().receive(ev(4));
    h.last().receive(ev(5, "task.succeeded"));
    h.last().receive({ type: "end", task_id: TASK });
    expect(r.events).toEqual([1, 2, 3, 4, 5]);
    expect(r.log).toEqual(["resync", "end"]);
  });

  it("passes a task's events on in seq order when a live event of * overtakes its history", async () => {
    const h = harness();
    const r = recorder();
    const all: number[] = [];
    h.live.start();
    await h.flush();
    h.last().open();
    h.live.followAll({ onEvent: (e) => all.push(e.seq) });
    h.live.followTask(TASK, 0, r.handlers);
    h.last().receive(ev(3)); // live, through *, before the task subscription's history
    expect(r.events).toEqual([]);
    h.last().receive(ev(1, "task.submitted"));
    h.last().receive(ev(2, "task.started"));
    h.last().receive(ev(3)); // the task subscription's own copy
    expect(r.events).toEqual([1, 2, 3]);
    expect(all).toEqual([3, 1, 2, 3]); // * listeners see frames as they come (statuses only)

    h.last().drop(1006);
    await h.advance(500);
    h.last().open();
    expect(h.last().sent).toContainEqual({ type: "subscribe", task_id: TASK, after: 3 });
  });

  it("does not resubscribe a task whose timeline ended", async () => {
    const h = harness();
    const r = recorder();
    h.live.start();
    await h.flush();
    h.last().open();
    h.live.followTask(TASK, 0, r.handlers);
    h.last().receive(ev(1, "task.submitted"));
    h.last().receive(ev(2, "task.cancelled"));
    h.last().receive({ type: "end", task_id: TASK });
    h.last().drop(1012);
    await h.advance(250);
    h.last().open();
    expect(h.last().sent).toEqual([]);
  });

  it("reconnects soon after a service restart (1012), later after 1013, and backs off", async () => {
    const h = harness();
    h.live.start();
    await h.flush();
    h.last().open();
    h.last().drop(1012);
    expect(h.timers[0]?.at).toBe(1_000_000 + 250);
    await h.advance(250);
    expect(h.sockets).toHaveLength(2);
    h.last().drop(1013); // never opened: the second failure in a row
    expect(h.timers[0]?.at).toBe(1_000_000 + 250 + 4000);
    await h.advance(4000);
    expect(h.sockets).toHaveLength(3);
    h.last().drop(1006);
    expect(h.timers[0]?.at).toBe(1_000_000 + 4250 + 2000);
  });

  it("starts the backoff over after a connection that stayed up", async () => {
    const h = harness();
    h.live.start();
    await h.flush();
    h.last().drop(1006);
    await h.advance(500);
    h.last().drop(1006);
    await h.advance(1000);
    h.last().open();
    h.elapse(60_000);
    h.last().drop(1006);
    expect(h.timers[0]?.at).toBe(1_000_000 + 1500 + 60_000 + 500);
  });

  it("reports a task that is not the tenant's (404 error frame) and forgets it", async () => {
    const h = harness();
    const r = recorder();
    h.live.start();
    await h.flush();
    h.last().open();
    h.live.followTask(OTHER, 0, r.handlers);
    h.last().receive({ type: "error", task_id: OTHER, status: 404, title: "Not Found", detail: "No task." });
    expect(r.log).toEqual(["error 404"]);
    h.last().drop(1006);
    await h.advance(500);
    h.last().open();
    expect(h.last().sent).toEqual([]);
  });

  it("resubscribes after a 503 error frame, from where the task stopped", async () => {
    const h = harness();
    const r = recorder();
    h.live.start();
    await h.flush();
    h.last().open();
    h.live.followTask(TASK, 0, r.handlers);
    h.last().receive(ev(1));
    h.last().receive(ev(2));
    h.last().receive({ type: "error", task_id: TASK, status: 503, title: "Service Unavailable" });
    expect(r.log).toEqual([]);
    await h.advance(2000);
    expect(h.last().sent).toEqual([
      { type: "subscribe", task_id: TASK, after: 0 },
      { type: "subscribe", task_id: TASK, after: 2 },
    ]);
  });

  it("passes every event to * listeners and re-fetch hooks after a reconnect", async () => {
    const h = harness();
    const seen: string[] = [];
    let resyncs = 0;
    h.live.start();
    await h.flush();
    h.last().open();
    const stop = h.live.followAll({ onEvent: (e) => seen.push(`${e.task_id}:${e.seq}`), onResync: () => { resyncs++; } });
    expect(h.last().sent).toEqual([{ type: "subscribe", task_id: "*" }]);
    h.last().receive(ev(4, "task.started", OTHER));
    expect(seen).toEqual([`${OTHER}:4`]);
    h.last().drop(1006);
    await h.advance(500);
    h.last().open();
    expect(resyncs).toBe(1);
    stop();
    expect(h.last().sent).toEqual([{ type: "subscribe", task_id: "*" }, { type: "unsubscribe", task_id: "*" }]);
  });

  it("unsubscribes a task when its view goes away", async () => {
    const h = harness();
    h.live.start();
    await h.flush();
    h.last().open();
    const stop = h.live.followTask(TASK, 0, recorder().handlers);
    stop();
    expect(h.last().sent).toEqual([
      { type: "subscribe", task_id: TASK, after: 0 },
      { type: "unsubscribe", task_id: TASK },
    ]);
  });

  it("retries when no ticket can be had, and stops for good on a 401", async () => {
    let calls = 0;
    const h = harness({
      ticket: () => {
        calls++;
        if (calls === 1) return Promise.reject(new ApiError({ status: 503, title: "Service Unavailable" }));
        return Promise.reject(new ApiError({ status: 401, title: "Unauthorized" }));
      },
    });
    h.live.start();
    await h.flush();
    expect(h.live.status.state).toBe("connecting");
    expect(h.live.status.reason).toMatch(/no ticket/);
    await h.advance(500);
    expect(calls).toBe(2);
    expect(h.live.status.state).toBe("stopped");
    expect(h.timers).toHaveLength(0);
  });

  it("stop() closes the socket and never reconnects", async () => {
    const h = harness();
    h.live.start();
    await h.flush();
    h.last().open();
    const socket = h.last();
    h.live.stop();
    expect(socket.closed?.code).toBe(1000);
    expect(h.live.status.state).toBe("stopped");
    await h.advance(60_000);
    expect(h.sockets).toHaveLength(1);
  });
});
