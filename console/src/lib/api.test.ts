import { describe, expect, it } from "vitest";
import { Api, checkKey, withQuery } from "./api";
import { ApiError } from "./problem";

interface Call { url: string; init: RequestInit }

function fakeFetch(responses: Response[]) {
  const calls: Call[] = [];
  const fetcher = ((input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: typeof input === "string" ? input : input instanceof URL ? input.href : input.url, init: init ?? {} });
    const next = responses.shift();
    return next ? Promise.resolve(next) : Promise.reject(new TypeError("Failed to fetch"));
  }) as typeof fetch;
  return { calls, fetcher };
}

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": type } });

const header = (call: Call | undefined, name: string) => new Headers(call?.init.headers).get(name);

describe("Api", () => {
  it("sends the key as a bearer token, never in the URL", async () => {
    const { calls, fetcher } = fakeFetch([json(200, { items: [], next_cursor: null })]);
    const api = new Api("rk_secret", undefined, fetcher);
    await api.listTasks({ status: "running", limit: 20, cursor: null });
    expect(calls[0]?.url).toBe("/v1/tasks?status=running&limit=20");
    expect(calls[0]?.url).not.toContain("rk_secret");
    expect(header(calls[0], "authorization")).toBe("Bearer rk_secret");
    expect(calls[0]?.init.credentials).toBe("omit");
  });

  it("posts JSON with an Idempotency-Key", async () => {
    const { calls, fetcher } = fakeFetch([json(202, { id: "t" })]);
    await new Api("k", undefined, fetcher).submitTask({ prompt: "hi" }, "console-1");
    expect(calls[0]?.init.method).toBe("POST");
    expect(header(calls[0], "idempotency-key")).toBe("console-1");
    expect(header(calls[0], "content-type")).toBe("application/json");
    expect(calls[0]?.init.body).toBe('{"prompt":"hi"}');
  });

  it("posts an answer with the question it answers, and throws a 409 as a problem", async () => {
    const { calls, fetcher } = fakeFetch([
      json(202, { id: "t", status: "running", question: null }),
      json(409, { title: "Task not waiting for input", status: 409, detail: "The task is running." }, "application/problem+json"),
    ]);
    const api = new Api("k", undefined, fetcher);
    await expect(api.answerTask("t/1", "eu-west-1", "q-1")).resolves.toMatchObject({ status: "running" });
    expect(calls[0]?.url).toBe("/v1/tasks/t%2F1/input");
    expect(calls[0]?.init.method).toBe("POST");
    expect(calls[0]?.init.body).toBe('{"text":"eu-west-1","question_id":"q-1"}');
    await expect(api.answerTask("t", "again")).rejects.toMatchObject({ status: 409, title: "Task not waiting for input" });
    expect(calls[1]?.init.body).toBe('{"text":"again"}');
  });

  it("throws the problem and signs out on a 401", async () => {
    let signedOut = 0;
    const { fetcher } = fakeFetch([json(401, { title: "Unauthorized", status: 401, detail: "Unknown API key." }, "application/problem+json")]);
    const api = new Api("k", () => { signedOut++; }, fetcher);
    await expect(api.getTask("x")).rejects.toMatchObject({ status: 401, detail: "Unknown API key." });
    expect(signedOut).toBe(1);
  });

  it("does not sign out on other errors", async () => {
    let signedOut = 0;
    const { fetcher } = fakeFetch([json(404, { title: "Not Found", status: 404 }, "application/problem+json")]);
    await expect(new Api("k", () => { signedOut++; }, fetcher).getTask("x")).rejects.toBeInstanceOf(ApiError);
    expect(signedOut).toBe(0);
  });

  it("turns a network failure into status 0", async () => {
    const { fetcher } = fakeFetch([]);
    await expect(new Api("k", undefined, fetcher).listWebhooks()).rejects.toMatchObject({ status: 0 });
  });

  it("answers undefined for 204", async () => {
    const { calls, fetcher } = fakeFetch([new Response(null, { status: 204 })]);
    await expect(new Api("k", undefined, fetcher).deleteWebhook("w/1")).resolves.toBeUndefined();
    expect(calls[0]?.url).toBe("/v1/webhooks/w%2F1"); // ids are escaped into the path
    expect(calls[0]?.init.method).toBe("DELETE");
  });

  it("checkKey fails with 401 for a wrong key", async () => {
    const { calls, fetcher } = fakeFetch([json(401, { title: "Unauthorized", status: 401 }, "application/problem+json")]);
    await expect(checkKey("wrong", fetcher)).rejects.toMatchObject({ status: 401 });
    expect(calls[0]?.url).toBe("/v1/tasks?limit=1");
  });
});

describe("withQuery", () => {
  it("leaves out empty values", () => {
    expect(withQuery("/v1/tasks", { status: "", limit: 5, cursor: null })).toBe("/v1/tasks?limit=5");
    expect(withQuery("/v1/tasks", {})).toBe("/v1/tasks");
  });
});
