import type { TargetedSubmitEvent } from "preact";
import { useState } from "preact/hooks";
import { Empty, ErrorBox, FieldError, Loading, SecretReveal } from "../components/common";
import { useSession } from "../context";
import { useLoad, usePageTitle } from "../hooks";
import { formatTime } from "../lib/format";
import { ApiError, fieldErrors, networkError } from "../lib/problem";
import { href } from "../lib/router";
import { WEBHOOK_EVENT_TYPES, type WebhookEndpoint, type WebhookEndpointWithSecret } from "../lib/types";

export function WebhooksPage() {
  const { api } = useSession();
  const heading = usePageTitle("Webhooks");
  const list = useLoad((signal) => api.listWebhooks(signal), "webhooks");
  const [created, setCreated] = useState<WebhookEndpointWithSecret | null>(null);
  const [formOpen, setFormOpen] = useState(false);

  return (
    <section class="page" aria-labelledby="webhooks-title">
      <div class="page-head">
        <h1 id="webhooks-title" ref={heading} tabIndex={-1}>Webhooks</h1>
        {!formOpen && created === null && (
          <button type="button" class="button" onClick={() => { setFormOpen(true); }} data-testid="webhook-new">
            Add endpoint
          </button>
        )}
      </div>
      <p class="muted">Relay POSTs your tasks' events to these URLs, signed per Standard Webhooks.</p>

      {created !== null && (
        <SecretReveal
          secret={created.secret}
          title={`Endpoint added: ${created.url}`}
          note={<p><a href={href.webhook(created.id)}>Open the endpoint</a> to send a test event.</p>}
          onDismiss={() => { setCreated(null); }}
        />
      )}

      {formOpen && (
        <CreateWebhookForm
          onCancel={() => { setFormOpen(false); }}
          onCreated={(endpoint) => {
            setFormOpen(false);
            setCreated(endpoint);
            list.reload();
          }}
        />
      )}

      {list.data === null ? (
        list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : <Loading label="Loading endpoints…" />
      ) : list.data.items.length === 0 ? (
        <Empty testId="webhooks-empty"><p>No webhook endpoints yet.</p></Empty>
      ) : (
        <ul class="webhook-list" data-testid="webhook-list">
          {list.data.items.map((endpoint) => <WebhookRow key={endpoint.id} endpoint={endpoint} />)}
        </ul>
      )}
    </section>
  );
}

export function EnabledBadge({ endpoint }: { endpoint: WebhookEndpoint }) {
  return (
    <span class={`badge ${endpoint.enabled ? "status-succeeded" : "status-cancelled"}`} data-testid="webhook-enabled" data-enabled={String(endpoint.enabled)}>
      {endpoint.enabled ? "Enabled" : "Disabled"}
    </span>
  );
}

function WebhookRow({ endpoint }: { endpoint: WebhookEndpoint }) {
  return (
    <li class="webhook-row" data-testid="webhook-row" data-webhook-id={endpoint.id}>
      <div class="task-row-main">
        <a href={href.webhook(endpoint.id)} class="task-link break mono" data-testid="webhook-link">{endpoint.url}</a>
        <EnabledBadge endpoint={endpoint} />
      </div>
      <div class="task-row-meta muted">
        <span>{endpoint.event_types.includes("*") ? "All events" : endpoint.event_types.join(", ")}</span>
        {endpoint.description && <span class="break">{endpoint.description}</span>}
        <span>Added {formatTime(endpoint.created_at)}</span>
      </div>
      {endpoint.disabled_reason && <p class="error-inline">Disabled: {endpoint.disabled_reason}</p>}
    </li>
  );
}

const FIELDS = ["url", "event_types", "description"];

function CreateWebhookForm({ onCreated, onCancel }: { onCreated: (endpoint: WebhookEndpointWithSecret) => void; onCancel: () => void }) {
  const { api } = useSession();
  const [url, setUrl] = useState("");
  const [all, setAll] = useState(true);
  const [types, setTypes] = useState<string[]>([]);
  const [description, setDescription] = useState("");
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  const submit = async (event: TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    setProblem(null);
    setOther([]);
    const local: Record<string, string[]> = {};
    if (url.trim() === "") local.url = ["Enter the URL Relay should POST to."];
    if (!all && types.length === 0) local.event_types = ["Pick at least one event, or all events."];
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      const endpoint = await api.createWebhook({
        url: url.trim(),
        event_types: all ? ["*"] : WEBHOOK_EVENT_TYPES.filter((t) => types.includes(t)),
        description,
      });
      onCreated(endpoint);
    } catch (err) {
      const error = err instanceof ApiError ? err : networkError(err);
      const spread = fieldErrors(error.errors, FIELDS);
      setErrors(spread.byField);
      setOther(spread.other);
      setProblem(error);
      setBusy(false);
    }
  };

  return (
    <form class="card form" onSubmit={submit} data-testid="webhook-form" noValidate aria-labelledby="webhook-form-title">
      <h2 id="webhook-form-title">Add an endpoint</h2>
      {problem && (
        <div class="error-box" role="alert" data-testid="webhook-form-error">
          <p><strong>{problem.status === 0 ? "Cannot reach the API" : problem.title}</strong>{problem.detail ? ` — ${problem.detail}` : ""}</p>
          {other.length > 0 && <ul>{other.map((m, i) => <li key={i}>{m}</li>)}</ul>}
        </div>
      )}
      <div class="field">
        <label for="webhook-url">URL</label>
        <input
          id="webhook-url"
          type="url"
          inputMode="url"
          placeholder="https://example.com/relay-webhooks"
          value={url}
          maxLength={2048}
          onInput={(e) => { setUrl(e.currentTarget.value); }}
          aria-invalid={Boolean(errors.url)}
          aria-describedby={errors.url ? "url-error" : undefined}
          data-testid="webhook-url"
          required
        />
        <FieldError id="url-error" messages={errors.url} />
      </div>
      <fieldset class="field" aria-describedby={errors.event_types ? "event_types-error" : undefined}>
        <legend>Events</legend>
        <label class="check">
          <input type="checkbox" checked={all} onChange={(e) => { setAll(e.currentTarget.checked); }} data-testid="webhook-event-all" />
          All events
        </label>
        <div class="checks">
          {WEBHOOK_EVENT_TYPES.map((type) => (
            <label class="check" key={type}>
              <input
                type="checkbox"
                value={type}
                disabled={all}
                checked={all || types.includes(type)}
                onChange={(e) => {
                  const checked = e.currentTarget.checked;
                  setTypes((current) => (checked ? [...current, type] : current.filter((t) => t !== type)));
                }}
                data-testid="webhook-event-type"
              />
              <code>{type}</code>
            </label>
          ))}
        </div>
        <FieldError id="event_types-error" messages={errors.event_types} />
      </fieldset>
      <div class="field">
        <label for="webhook-description">Description (optional)</label>
        <input
          id="webhook-description"
          type="text"
          value={description}
          maxLength={500}
          onInput={(e) => { setDescription(e.currentTarget.value); }}
          aria-invalid={Boolean(errors.description)}
          aria-describedby={errors.description ? "description-error" : undefined}
          data-testid="webhook-description"
        />
        <FieldError id="description-error" messages={errors.description} />
      </div>
      <div class="actions">
        <button type="submit" class="button" disabled={busy} data-testid="webhook-submit">
          {busy ? "Adding…" : "Add endpoint"}
        </button>
        <button type="button" class="button secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
