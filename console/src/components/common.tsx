import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { LiveStatus } from "../lib/live";
import type { ApiError } from "../lib/problem";
import { STATUS_LABELS } from "../lib/status";
import type { TaskStatus } from "../lib/types";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="loading" role="status" data-testid="loading">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function ErrorBox({ error, onRetry, testId = "error" }: { error: ApiError; onRetry?: () => void; testId?: string }) {
  return (
    <div class="error-box" role="alert" data-testid={testId}>
      <p>
        <strong>{error.status === 0 ? "Cannot reach the API" : error.title}</strong>
        {error.detail !== null && error.detail !== error.title ? ` — ${error.detail}` : ""}
        {error.retryAfter !== null ? ` Try again in ${error.retryAfter} s.` : ""}
      </p>
      {error.errors.length > 0 && (
        <ul>
          {error.errors.map((e, i) => (
            <li key={i}>{e.location ? `${e.location}: ${e.message}` : e.message}</li>
          ))}
        </ul>
      )}
      {onRetry && (
        <button type="button" class="button secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children, testId = "empty" }: { children: ComponentChildren; testId?: string }) {
  return (
    <div class="empty" data-testid={testId}>
      {children}
    </div>
  );
}

export function StatusBadge({ status }: { status: TaskStatus }) {
  return (
    <span class={`badge status-${status}`} data-testid="task-status" data-status={status}>
      {STATUS_LABELS[status]}
    </span>
  );
}

const LIVE_LABELS = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  stopped: "Offline",
} as const;

export function ConnectionIndicator({ status }: { status: LiveStatus }) {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (status.retryAt === null) return undefined;
    const id = setInterval(() => { setNow(Date.now()); }, 500);
    return () => { clearInterval(id); };
  }, [status.retryAt]);
  const wait = status.retryAt !== null ? Math.max(0, Math.ceil((status.retryAt - now) / 1000)) : null;
  const why = status.reason ?? "";
  const title =
    status.state === "connected"
      ? "Live updates connected"
      : [why, wait !== null ? `retrying in ${wait} s` : ""].filter(Boolean).join("; ") || LIVE_LABELS[status.state];
  return (
    <span
      class={`connection connection-${status.state}`}
      data-testid="connection-status"
      data-state={status.state}
      role="status"
      title={title}
    >
      <span class="dot" aria-hidden="true" />
      <span>{LIVE_LABELS[status.state]}</span>
      <span class="visually-hidden">{status.state === "connected" ? "" : ` ${title}`}</span>
    </span>
  );
}

export function CopyButton({ text, label = "Copy", testId }: { text: string; label?: string; testId?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => { if (timer.current) clearTimeout(timer.current); }, []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState("copied");
    } catch {
      setState("failed");
    }
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => { setState("idle"); }, 2500);
  };
  return (
    <button type="button" class="button secondary" onClick={copy} data-testid={testId}>
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed: select and copy" : label}
      <span class="visually-hidden" role="status">{state === "copied" ? "Copied to the clipboard" : ""}</span>
    </button>
  );
}

/** A secret shown once (a webhook's signing secret). */
export function SecretReveal({ secret, title, note, onDismiss }: { secret: string; title: string; note?: ComponentChildren; onDismiss: () => void }) {
  return (
    <section class="secret" aria-labelledby="secret-title" data-testid="webhook-secret">
      <h3 id="secret-title">{title}</h3>
      <p>Copy it now: it is shown only this once.</p>
      <div class="secret-row">
        <label class="visually-hidden" for="secret-value">Signing secret</label>
        <input
          id="secret-value"
          class="mono"
          type="text"
          readOnly
          value={secret}
          data-testid="webhook-secret-value"
          onFocus={(e) => { e.currentTarget.select(); }}
        />
        <CopyButton text={secret} testId="webhook-secret-copy" />
      </div>
      {note}
      <button type="button" class="button" onClick={onDismiss} data-testid="webhook-secret-dismiss">
        I have saved it
      </button>
    </section>
  );
}

export function FieldError({ id, messages }: { id: string; messages: string[] | undefined }) {
  if (!messages || messages.length === 0) return null;
  return (
    <p class="field-error" id={id} data-testid="field-error">
      {messages.join(" ")}
    </p>
  );
}

/** Two-step confirmation for destructive buttons, keyboard-usable (no window.confirm). */
export function ConfirmButton({
  label,
  confirmLabel,
  question,
  onConfirm,
  busy = false,
  danger = false,
  testId,
}: {
  label: string;
  confirmLabel: string;
  question: string;
  onConfirm: () => void;
  busy?: boolean;
  danger?: boolean;
  testId: string;
}) {
  const [asking, setAsking] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button
        type="button"
        class={`button ${danger ? "danger" : "secondary"}`}
        onClick={() => { setAsking(true); }}
        disabled={busy}
        data-testid={testId}
      >
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={question}>
      <span>{question}</span>
      <button
        ref={confirmRef}
        type="button"
        class={`button ${danger ? "danger" : ""}`}
        onClick={() => { setAsking(false); onConfirm(); }}
        disabled={busy}
        data-testid={`${testId}-confirm`}
      >
        {confirmLabel}
      </button>
      <button type="button" class="button secondary" onClick={() => { setAsking(false); }} data-testid={`${testId}-dismiss`}>
        No
      </button>
    </span>
  );
}
