import { describe, expect, it } from "vitest";
import {
  CLOSE,
  HEALTHY_CONNECTION_MS,
  MAX_RECONNECT_DELAY_MS,
  advance,
  attemptsAfterClose,
  describeClose,
  reconnectDelay,
  resubscribeFrames,
  wsUrl,
} from "./resume";

describe("reconnectDelay", () => {
  it("grows exponentially with jitter between half and all of the ceiling", () => {
    expect(reconnectDelay(0, CLOSE.ABNORMAL, () => 0)).toBe(250);
    expect(reconnectDelay(0, CLOSE.ABNORMAL, () => 1)).toBe(500);
    expect(reconnectDelay(1, CLOSE.ABNORMAL, () => 1)).toBe(1000);
    expect(reconnectDelay(3, CLOSE.ABNORMAL, () => 1)).toBe(4000);
  });

  it("is capped", () => {
    expect(reconnectDelay(50, CLOSE.ABNORMAL, () => 1)).toBe(MAX_RECONNECT_DELAY_MS);
    expect(reconnectDelay(50, CLOSE.ABNORMAL, () => 0)).toBe(MAX_RECONNECT_DELAY_MS / 2);
  });

  it("comes back soonest after a service restart (1012) and later after 1013", () => {
    const restart = reconnectDelay(0, CLOSE.SERVICE_RESTART, () => 1);
    const normal = reconnectDelay(0, CLOSE.ABNORMAL, () => 1);
    const later = reconnectDelay(0, CLOSE.TRY_AGAIN_LATER, () => 1);
    expect(restart).toBeLessThan(normal);
    expect(later).toBeGreaterThan(normal);
    expect(later).toBeGreaterThanOrEqual(1000);
  });
});

describe("attemptsAfterClose", () => {
  it("counts failures, and starts over after a healthy connection", () => {
    expect(attemptsAfterClose(0, null)).toBe(1);
    expect(attemptsAfterClose(3, 200)).toBe(4);
    expect(attemptsAfterClose(5, HEALTHY_CONNECTION_MS)).toBe(0);
  });
});

describe("resubscribeFrames", () => {
  it("restores * and every task that has not ended, after its last seq", () => {
    const frames = resubscribeFrames(true, [
      { taskId: "a", after: 7, ended: false },
      { taskId: "b", after: 3, ended: true },
      { taskId: "c", after: 0, ended: false },
    ]);
    expect(frames).toEqual([
      { type: "subscribe", task_id: "*" },
      { type: "subscribe", task_id: "a", after: 7 },
      { type: "subscribe", task_id: "c", after: 0 },
    ]);
    expect(resubscribeFrames(false, [])).toEqual([]);
  });
});

describe("advance", () => {
  const seqs = (events: { seq: number }[]) => events.map((e) => e.seq);

  it("passes each seq on once, in order, and resumes after the last one passed on", () => {
    const follow = { after: 0, pending: new Map<number, { seq: number }>() };
    expect(seqs(advance(follow, { seq: 1 }))).toEqual([1]);
    expect(seqs(advance(follow, { seq: 2 }))).toEqual([2]);
    expect(advance(follow, { seq: 2 })).toEqual([]); // duplicate
    expect(advance(follow, { seq: 1 })).toEqual([]);
    expect(follow.after).toBe(2);
  });

  it("holds an event past a gap until the events below it come", () => {
    const follow = { after: 2, pending: new Map<number, { seq: number }>() };
    expect(advance(follow, { seq: 5 })).toEqual([]); // a live event overtook the history
    expect(advance(follow, { seq: 5 })).toEqual([]);
    expect(follow.after).toBe(2);
    expect(seqs(advance(follow, { seq: 3 }))).toEqual([3]);
    expect(follow.after).toBe(3);
    expect(seqs(advance(follow, { seq: 4 }))).toEqual([4, 5]); // 4 closes the gap up to 5
    expect(follow.after).toBe(5);
    expect(follow.pending.size).toBe(0);
  });
});

describe("wsUrl", () => {
  it("uses ws: for http: and wss: for https:, with the ticket encoded", () => {
    expect(wsUrl("http://127.0.0.1:8000", "rlt_a+b")).toBe("ws://127.0.0.1:8000/v1/ws?ticket=rlt_a%2Bb");
    expect(wsUrl("https://relay.example.com", "t")).toBe("wss://relay.example.com/v1/ws?ticket=t");
  });
});

describe("describeClose", () => {
  it("names the close codes the API uses", () => {
    expect(describeClose(1012)).toMatch(/restarted/);
    expect(describeClose(1013)).toMatch(/later/);
    expect(describeClose(1006)).toMatch(/dropped/);
    expect(describeClose(4001)).toBe("closed (4001)");
  });
});
