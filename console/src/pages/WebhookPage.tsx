import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ConfirmButton, Empty, ErrorBox, Loading, SecretReveal } from "../components/common";
import { useSession } from "../context";
import { useAction, useLoad, usePageTitle } from "../hooks";
import { formatTime } from "../lib/format";
import { ApiError, networkError } from "../lib/problem";
import { href, isUuid, navigate } from "../lib/router";
import type { DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookSecret } from "../lib/types";
import { EnabledBadge } from "./WebhooksPage";

export function WebhookPage({ id }: { id: string }) {
  const { api } = useSession();
  const valid = isUuid(id);
  const endpoint = useLoad(
    (signal) => (valid ? api.getWebhook(id, signal) : Promise.reject(new ApiError({ status: 404, title: "Not Found" }))),
    id,
  );
  if (endpoint.error?.status === 404) return <WebhookNotFound />;
  if (endpoint.data === null) {
    return (
      <section class="page">
        <h1>Webhook endpoint</h1>
        {endpoint.error ? <ErrorBox error={endpoint.error} onRetry={endpoint.reload} /> : <Loading label="Loading the endpoint…" />}
      </section>
    );
  }
  return <WebhookDetails endpoint={endpoint.data} onChange={(e) => { endpoint.setData(() => e); }} />;
}

function WebhookNotFound() {
  const heading = usePageTitle("Webhook endpoint not found");
  return (
    <section class="page narrow" data-testid="webhook-not-found">
      <h1 ref={heading} tabIndex={-1}>Webhook endpoint not found</h1>
      <p>There is no such endpoint for this API key.</p>
      <p><a href={href.webhooks()}>Back to webhooks</a></p>
    </section>
  );
}

function WebhookDetails({ endpoint, onChange }: { endpoint: WebhookEndpoint; onChange: (e: WebhookEndpoint) => void }) {
  const { api } = useSession();
  const heading = usePageTitle("Webhook endpoint");
  const toggle = useAction();
  const rotate = useAction();
  const remove = useAction();
  const test = useAction();
  const [secret, setSecret] = useState<WebhookSecret | null>(null);
  const [testNote, setTestNote] = useState<string | null>(null);
  const [deliveriesVersion, setDeliveriesVersion] = useState(0);

  const setEnabled = async () => {
    const updated = await toggle.run(() => api.updateWebhook(endpoint.id, { enabled: !endpoint.enabled }));
    if (updated) onChange(updated);
  };
  const doRotate = async () => {
    const result = await rotate.run(() => api.rotateWebhookSecret(endpoint.id));
    if (result) setSecret(result);
  };
  const doDelete = async () => {
    const result = await remove.run(async () => { await api.deleteWebhook(endpoint.id); return true; });
    if (result) navigate(href.webhooks());
  };
  const doTest = async () => {
    setTestNote(null);
    const result = await test.run(() => api.testWebhook(endpoint.id));
    if (result) {
      setTestNote(`Test event queued (webhook-id ${result.event_id}).`);
      setDeliveriesVersion((v) => v + 1);
    }
  };

  return (
    <article class="page" data-testid="webhook-page" data-webhook-id={endpoint.id}>
      <div class="page-head">
        <div>
          <p class="crumbs"><a href={href.webhooks()}>Webhooks</a> /</p>
          <h1 ref={heading} tabIndex={-1}>Webhook endpoint</h1>
        </div>
        <EnabledBadge endpoint={endpoint} />
      </div>

      {secret !== null && (
        <SecretReveal
          secret={secret.secret}
          title="New signing secret"
          note={<p>Until {formatTime(secret.previous_secret_expires_at)} deliveries are signed with the old secret too, so you can switch your receiver over.</p>}
          onDismiss={() => { setSecret(null); }}
        />
      )}

      <section class="card" aria-labelledby="endpoint-title">
        <h2 id="endpoint-title">Endpoint</h2>
        <dl class="kv">
          <dt>URL</dt>
          <dd class="mono break" data-testid="webhook-url-value">{endpoint.url}</dd>
          <dt>Events</dt>
          <dd>{endpoint.event_types.includes("*") ? "All events" : endpoint.event_types.join(", ")}</dd>
          <dt>Description</dt>
          <dd class="break">{endpoint.description || <span class="muted">None</span>}</dd>
          <dt>Added</dt>
          <dd>{formatTime(endpoint.created_at)}</dd>
          <dt>ID</dt>
          <dd class="mono break">{endpoint.id}</dd>
        </dl>
        {endpoint.disabled_reason && (
          <p class="error-inline" data-testid="webhook-disabled-reason">Disabled: {endpoint.disabled_reason}</p>
        )}
        <div class="actions wrap">
          <button type="button" class="button secondary" onClick={() => void setEnabled()} disabled={toggle.busy} data-testid="webhook-toggle">
            {endpoint.enabled ? "Disable" : "Enable"}
          </button>
          <button type="button" class="button secondary" onClick={() => void doTest()} disabled={test.busy} data-testid="webhook-test">
            Send test event
          </button>
          <ConfirmButton
            label="Rotate secret"
            question="Make a new signing secret?"
            confirmLabel="Yes, rotate"
            onConfirm={() => void doRotate()}
            busy={rotate.busy}
            testId="webhook-rotate"
          />
          <ConfirmButton
            label="Delete"
            question="Delete this endpoint?"
            confirmLabel="Yes, delete"
            onConfirm={() => void doDelete()}
            busy={remove.busy}
            danger
            testId="webhook-delete"
          />
        </div>
        <p role="status" class="muted" data-testid="webhook-action-status">{testNote}</p>
        {[toggle.error, rotate.error, remove.error, test.error].map((error, i) =>
          error ? <ErrorBox key={i} error={error} /> : null,
        )}
      </section>

      <Deliveries endpointId={endpoint.id} version={deliveriesVersion} />
    </article>
  );
}

const PAGE_SIZE = 25;
const DELIVERY_STATUSES: DeliveryStatus[] = ["pending", "succeeded", "failed"];

interface DeliveriesState {
  items: WebhookDelivery[];
  nextCursor: string | null;
  loading: boolean;
  loadingMore: boolean;
  error: ApiError | null;
}

function Deliveries({ endpointId, version }: { endpointId: string; version: number }) {
  const { api } = useSession();
  const [status, setStatus] = useState<DeliveryStatus | "">("");
  const [state, setState] = useState<DeliveriesState>({ items: [], nextCursor: null, loading: true, loadingMore: false, error: null });
  const generation = useRef(0);

  const load = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    api.listDeliveries(endpointId, { status, limit: PAGE_SIZE }).then(
      (page) => {
        if (mine === generation.current) setState({ items: page.items, nextCursor: page.next_cursor, loading: false, loadingMore: false, error: null });
      },
      (err: unknown) => {
        if (mine === generation.current) setState((s) => ({ ...s, loading: false, error: err instanceof ApiError ? err : networkError(err) }));
      },
    );
  }, [api, endpointId, status]);

  useEffect(() => {
    load();
    // after a test event, look again a moment later: the first attempt takes a little while
    if (version === 0) return undefined;
    const id = setTimeout(load, 1500);
    return () => { clearTimeout(id); };
  }, [load, version]);

  useEffect(() => {
    const loads = generation;
    return () => { loads.current++; };
  }, []);

  const more = () => {
    if (state.nextCursor === null) return;
    const mine = generation.current;
    setState((s) => ({ ...s, loadingMore: true, error: null }));
    api.listDeliveries(endpointId, { status, limit: PAGE_SIZE, cursor: state.nextCursor }).then(
      (page) => {
        if (mine !== generation.current) return;
        setState((s) => {
          const seen = new Set(s.items.map((d) => d.id));
          return { ...s, items: [...s.items, ...page.items.filter((d) => !seen.has(d.id))], nextCursor: page.next_cursor, loadingMore: false };
        });
      },
      (err: unknown) => {
        if (mine === generation.current) setState((s) => ({ ...s, loadingMore: false, error: err instanceof ApiError ? err : networkError(err) }));
      },
    );
  };

  return (
    <section class="card" aria-labelledby="deliveries-title" data-testid="deliveries">
      <div class="card-head">
        <h2 id="deliveries-title">Deliveries</h2>
        <div class="toolbar">
          <label for="delivery-status">Status</label>
          <select id="delivery-status" value={status} onChange={(e) => { setStatus(e.currentTarget.value as DeliveryStatus | ""); }} data-testid="delivery-status-filter">
            <option value="">All</option>
            {DELIVERY_STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
          <button type="button" class="button secondary small" onClick={load} data-testid="deliveries-refresh">Refresh</button>
        </div>
      </div>
      {state.error && <ErrorBox error={state.error} onRetry={load} />}
      {state.loading && state.items.length === 0 ? (
        <Loading label="Loading deliveries…" />
      ) : state.items.length === 0 ? (
        state.error ? null : <Empty testId="deliveries-empty"><p>No deliveries{status ? ` with status ${status}` : ""} yet.</p></Empty>
      ) : (
        <>
          <table class="deliveries" data-testid="deliveries-table">
            <caption class="visually-hidden">Deliveries, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last HTTP status</th>
                <th scope="col">Last error</th>
                <th scope="col">Next attempt</th>
              </tr>
            </thead>
            <tbody>
              {state.items.map((d) => (
                <tr key={d.id} data-testid="delivery-row" data-status={d.status}>
                  <td data-label="Event">
                    <div>
                      <code>{d.type}</code>
                      {d.task_id && (
                        <>
                          {" "}
                          <a href={href.task(d.task_id)} class="mono">{d.task_id.slice(0, 8)}</a>
                          {d.seq !== null ? ` #${d.seq}` : ""}
                        </>
                      )}
                      <div class="muted small-text">{formatTime(d.created_at)}</div>
                    </div>
                  </td>
                  <td data-label="Status"><span class={`badge delivery-${d.status}`}>{d.status}</span></td>
                  <td data-label="Attempts">{d.attempts}</td>
                  <td data-label="Last HTTP status">{d.last_status_code ?? "—"}</td>
                  <td data-label="Last error" class="break">{d.last_error ?? "—"}</td>
                  <td data-label="Next attempt">{d.next_attempt_at ? formatTime(d.next_attempt_at) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {state.nextCursor !== null && (
            <button type="button" class="button secondary wide" onClick={more} disabled={state.loadingMore} data-testid="deliveries-load-more">
              {state.loadingMore ? "Loading…" : "Load more"}
            </button>
          )}
        </>
      )}
    </section>
  );
}
