// The same-origin public API (/v1), with the API key as a bearer token. The key lives only in
// memory here and in sessionStorage (session.ts): never in a URL, never in localStorage.
import { ApiError, networkError, problemFromResponse } from "./problem";
import type {
  Artifact,
  ArtifactDownload,
  DeliveryStatus,
  NewTask,
  Page,
  Task,
  TaskStatus,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookSecret,
  WsTicket,
} from "./types";

type Query = Record<string, string | number | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

const seg = encodeURIComponent;

export class Api {
  private readonly key: string;
  private readonly onUnauthorized: () => void;
  private readonly fetcher: typeof fetch;

  /**
   * `onUnauthorized` runs when an answer is 401 (the key was revoked or is wrong): the app
   * signs out. `fetcher` is for tests.
   */
  constructor(key: string, onUnauthorized: () => void = () => undefined, fetcher?: typeof fetch) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
    this.fetcher = fetcher ?? ((input, init) => fetch(input, init));
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {
      Accept: "application/json, application/problem+json",
      Authorization: `Bearer ${this.key}`,
      ...options.headers,
    };
    const init: RequestInit = { method, headers, credentials: "omit", cache: "no-store" };
    if (options.signal) init.signal = options.signal;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await this.fetcher(withQuery(path, options.query), init);
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
      throw networkError(cause);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (!response.ok) {
      const problem = problemFromResponse(response.status, text, response.headers);
      if (response.status === 401) this.onUnauthorized();
      throw problem;
    }
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError({
        status: response.status,
        title: "Unreadable answer",
        detail: "The API answered with something that is not JSON.",
      });
    }
  }

  // --- tasks

  listTasks(params: { status?: TaskStatus | ""; limit?: number; cursor?: string | null }, signal?: AbortSignal) {
    return this.request<Page<Task>>("GET", "/v1/tasks", {
      query: { status: params.status, limit: params.limit, cursor: params.cursor },
      signal,
    });
  }

  getTask(id: string, signal?: AbortSignal) {
    return this.request<Task>("GET", `/v1/tasks/${seg(id)}`, { signal });
  }

  submitTask(body: NewTask, idempotencyKey: string) {
    return this.request<Task>("POST", "/v1/tasks", {
      body,
      headers: { "Idempotency-Key": idempotencyKey },
    });
  }

  cancelTask(id: string) {
    return this.request<Task>("POST", `/v1/tasks/${seg(id)}/cancel`, { body: {} });
  }

  /** Answers the question a `waiting_for_input` task asks; 409 when it no longer waits for it. */
  answerTask(id: string, text: string, questionId?: string) {
    const body = questionId === undefined ? { text } : { text, question_id: questionId };
    return this.request<Task>("POST", `/v1/tasks/${seg(id)}/input`, { body });
  }

  listArtifacts(taskId: string, signal?: AbortSignal) {
    return this.request<{ items: Artifact[] }>("GET", `/v1/tasks/${seg(taskId)}/artifacts`, { signal });
  }

  getArtifact(taskId: string, artifactId: string, signal?: AbortSignal) {
    return this.request<ArtifactDownload>(
      "GET",
      `/v1/tasks/${seg(taskId)}/artifacts/${seg(artifactId)}`,
      { signal },
    );
  }

  createWsTicket() {
    return this.request<WsTicket>("POST", "/v1/ws-tickets");
  }

  // --- webhooks

  listWebhooks(signal?: AbortSignal) {
    return this.request<{ items: WebhookEndpoint[] }>("GET", "/v1/webhooks", { signal });
  }

  getWebhook(id: string, signal?: AbortSignal) {
    return this.request<WebhookEndpoint>("GET", `/v1/webhooks/${seg(id)}`, { signal });
  }

  createWebhook(body: { url: string; event_types: string[]; description: string }) {
    return this.request<WebhookEndpointWithSecret>("POST", "/v1/webhooks", { body });
  }

  updateWebhook(id: string, body: Partial<Pick<WebhookEndpoint, "url" | "event_types" | "description" | "enabled">>) {
    return this.request<WebhookEndpoint>("PATCH", `/v1/webhooks/${seg(id)}`, { body });
  }

  deleteWebhook(id: string) {
    return this.request<undefined>("DELETE", `/v1/webhooks/${seg(id)}`);
  }

  rotateWebhookSecret(id: string) {
    return this.request<WebhookSecret>("POST", `/v1/webhooks/${seg(id)}/rotate-secret`);
  }

  testWebhook(id: string) {
    return this.request<{ event_id: string }>("POST", `/v1/webhooks/${seg(id)}/test`);
  }

  listDeliveries(
    id: string,
    params: { status?: DeliveryStatus | ""; limit?: number; cursor?: string | null },
    signal?: AbortSignal,
  ) {
    return this.request<Page<WebhookDelivery>>("GET", `/v1/webhooks/${seg(id)}/deliveries`, {
      query: { status: params.status, limit: params.limit, cursor: params.cursor },
      signal,
    });
  }
}

/** Checks a key the way sign-in does: GET /v1/tasks?limit=1; a 401 means the key is wrong. */
export async function checkKey(key: string, fetcher?: typeof fetch): Promise<void> {
  await new Api(key, () => undefined, fetcher).listTasks({ limit: 1 });
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}
