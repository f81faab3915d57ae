// The public API's shapes (contracts/openapi.json). Only what the console reads is typed; extra
// fields are tolerated.

/** Task statuses (Task.status in openapi.json); `waiting_for_input`: the task asked a question
 * and waits for the answer (DESIGN.md, *Human input*). */
export type TaskStatus =
  | "queued"
  | "running"
  | "waiting_for_input"
  | "cancelling"
  | "succeeded"
  | "failed"
  | "cancelled";

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cost_usd: number;
}

export interface TaskLimits {
  max_turns: number;
  max_output_tokens: number;
  max_wall_seconds: number;
  max_cost_usd: number | null;
  /** How long the task may wait for an answer (seconds); absent on tasks from before it. */
  max_wait_seconds?: number | null;
}

export interface TaskError {
  code: string;
  message: string;
  budget: string | null;
}

/** The question a `waiting_for_input` task asks; answered with POST /v1/tasks/{id}/input. */
export interface Question {
  id: string;
  text: string;
  asked_at: string;
}

export interface Task {
  id: string;
  status: TaskStatus;
  prompt: string;
  model: string;
  metadata: Record<string, string>;
  limits: TaskLimits | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  usage: Usage;
  error: TaskError | null;
  result: { summary: string } | null;
  /** Set while the task is `waiting_for_input`, else null (absent from older servers). */
  question?: Question | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Body of POST /v1/tasks (NewTask). */
export interface NewTask {
  prompt: string;
  model?: string;
  metadata?: Record<string, string>;
  limits?: Partial<Record<keyof TaskLimits, number>>;
}

export interface Artifact {
  id: string;
  task_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

export interface ArtifactDownload extends Artifact {
  download_url: string;
  download_url_expires_at: string;
}

/** One timeline event: the JSON of an SSE `data:` line, also each WebSocket event frame. */
export interface TimelineEvent {
  type: string;
  seq: number;
  task_id: string;
  occurred_at: string;
  data: Record<string, unknown>;
  event_id?: string;
}

export interface WsTicket {
  ticket: string;
  expires_in: number;
}

export interface WebhookEndpoint {
  id: string;
  url: string;
  event_types: string[];
  description: string;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: string;
}

export interface WebhookEndpointWithSecret extends WebhookEndpoint {
  secret: string;
}

export interface WebhookSecret {
  secret: string;
  previous_secret_expires_at: string;
}

export type DeliveryStatus = "pending" | "succeeded" | "failed";

export interface WebhookDelivery {
  id: string;
  event_id: string;
  type: string;
  task_id: string | null;
  seq: number | null;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
}

/** The event names an endpoint may ask for (NewWebhookEndpoint.event_types in openapi.json). */
export const WEBHOOK_EVENT_TYPES = [
  "task.submitted",
  "task.cancel_requested",
  "task.started",
  "task.progressed",
  "task.input_requested",
  "task.input_provided",
  "task.succeeded",
  "task.failed",
  "task.cancelled",
  "artifact.published",
] as const;

/** Models the service allows by default (NewTask.model in openapi.json). The API has no
 * endpoint listing the allowed models, so these are suggestions; the field stays free text and
 * the server's 422 names the allowed ones when a model is refused. */
export const SUGGESTED_MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"];
export const DEFAULT_MODEL = "claude-sonnet-4-5";
