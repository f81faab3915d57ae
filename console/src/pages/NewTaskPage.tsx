import type { TargetedSubmitEvent } from "preact";
import { useRef, useState } from "preact/hooks";
import { FieldError } from "../components/common";
import { useSession } from "../context";
import { usePageTitle } from "../hooks";
import { LIMIT_FIELDS, NEW_TASK_FIELDS, buildNewTask, keyForAttempt, type NewTaskForm } from "../lib/newtask";
import { ApiError, fieldErrors, networkError } from "../lib/problem";
import { href, navigate } from "../lib/router";
import { DEFAULT_MODEL, SUGGESTED_MODELS } from "../lib/types";

const EMPTY: NewTaskForm = {
  prompt: "",
  model: "",
  maxTurns: "",
  maxOutputTokens: "",
  maxWallSeconds: "",
  maxCostUsd: "",
  maxWaitSeconds: "",
  metadata: [],
};

export function NewTaskPage() {
  const { api } = useSession();
  const heading = usePageTitle("New task");
  const [form, setForm] = useState<NewTaskForm>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const lastAttempt = useRef<{ body: string; key: string } | null>(null);
  const rowIds = useRef(0);
  const [metaIds, setMetaIds] = useState<number[]>([]);

  const set = <K extends keyof NewTaskForm>(name: K, value: NewTaskForm[K]) => { setForm((f) => ({ ...f, [name]: value })); };

  const submit = async (event: TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    setProblem(null);
    setOther([]);
    const built = buildNewTask(form);
    if (!built.ok) {
      setErrors(built.errors);
      focusFirstError();
      return;
    }
    setErrors({});
    const attempt = keyForAttempt(lastAttempt.current, JSON.stringify(built.body));
    lastAttempt.current = attempt;
    setBusy(true);
    try {
      const task = await api.submitTask(built.body, attempt.key);
      lastAttempt.current = null;
      navigate(href.task(task.id));
    } catch (err) {
      const error = err instanceof ApiError ? err : networkError(err);
      const spread = fieldErrors(error.errors, NEW_TASK_FIELDS);
      setErrors(spread.byField);
      setOther(spread.other);
      setProblem(error);
      setBusy(false);
      focusFirstError();
    }
  };

  const described = (name: string, hint?: string) =>
    [errors[name]?.length ? `${name}-error` : "", hint ?? ""].filter(Boolean).join(" ") || undefined;

  return (
    <section class="page narrow" aria-labelledby="new-task-title">
      <h1 id="new-task-title" ref={heading} tabIndex={-1}>New task</h1>
      <form class="form" onSubmit={submit} data-testid="new-task-form" noValidate>
        {problem && (
          <div class="error-box" role="alert" data-testid="new-task-error">
            <p>
              <strong>{problem.status === 0 ? "Cannot reach the API" : problem.title}</strong>
              {problem.detail ? ` — ${problem.detail}` : ""}
              {problem.retryAfter !== null ? ` Try again in ${problem.retryAfter} s.` : ""}
            </p>
            {other.length > 0 && <ul>{other.map((m, i) => <li key={i}>{m}</li>)}</ul>}
            {Object.keys(errors).length > 0 && <p>See the fields marked below.</p>}
          </div>
        )}

        <div class="field">
          <label for="prompt">Prompt</label>
          <textarea
            id="prompt"
            rows={8}
            value={form.prompt}
            onInput={(e) => { set("prompt", e.currentTarget.value); }}
            aria-invalid={Boolean(errors.prompt)}
            aria-describedby={described("prompt")}
            data-testid="new-task-prompt"
            required
          />
          <FieldError id="prompt-error" messages={errors.prompt} />
        </div>

        <div class="field">
          <label for="model">Model</label>
          <input
            id="model"
            type="text"
            list="model-options"
            placeholder={`${DEFAULT_MODEL} (default)`}
            value={form.model}
            autoComplete="off"
            spellcheck={false}
            onInput={(e) => { set("model", e.currentTarget.value); }}
            aria-invalid={Boolean(errors.model)}
            aria-describedby={described("model", "model-hint")}
            data-testid="new-task-model"
          />
          <datalist id="model-options">
            {SUGGESTED_MODELS.map((m) => <option key={m} value={m} />)}
          </datalist>
          <p class="hint" id="model-hint">Empty: the service's default model. The service may allow other models than the suggestions.</p>
          <FieldError id="model-error" messages={errors.model} />
        </div>

        <fieldset class="field">
          <legend>Limits</legend>
          <p class="hint">Leave a limit empty for the service's default.</p>
          <FieldError id="limits-error" messages={errors.limits} />
          <div class="grid-2">
            {LIMIT_FIELDS.map((f) => {
              const name = `limits.${f.name}`;
              const id = `limit-${f.name}`;
              return (
                <div class="field" key={f.name}>
                  <label for={id}>{f.label}</label>
                  <input
                    id={id}
                    type="number"
                    inputMode={f.integer ? "numeric" : "decimal"}
                    min={f.min}
                    step={f.integer ? 1 : "any"}
                    value={form[f.form]}
                    onInput={(e) => { set(f.form, e.currentTarget.value); }}
                    aria-invalid={Boolean(errors[name])}
                    aria-describedby={described(name, `${id}-hint`)}
                    data-testid={`new-task-${f.name}`}
                  />
                  <p class="hint" id={`${id}-hint`}>{f.hint}</p>
                  <FieldError id={`${name}-error`} messages={errors[name]} />
                </div>
              );
            })}
          </div>
        </fieldset>

        <fieldset class="field" data-testid="new-task-metadata">
          <legend>Metadata</legend>
          <p class="hint" id="metadata-hint">Your own key/value pairs, returned with the task (up to 16 keys).</p>
          <FieldError id="metadata-error" messages={errors.metadata} />
          {form.metadata.map((row, index) => {
            const rowId = metaIds[index] ?? index;
            return (
              <div class="meta-row" key={rowId}>
                <div class="field">
                  <label for={`meta-key-${rowId}`}>Key</label>
                  <input
                    id={`meta-key-${rowId}`}
                    type="text"
                    value={row.key}
                    maxLength={64}
                    onInput={(e) => {
                      const value = e.currentTarget.value;
                      set("metadata", form.metadata.map((r, i) => (i === index ? { ...r, key: value } : r)));
                    }}
                    data-testid="metadata-key"
                  />
                </div>
                <div class="field">
                  <label for={`meta-value-${rowId}`}>Value</label>
                  <input
                    id={`meta-value-${rowId}`}
                    type="text"
                    value={row.value}
                    maxLength={512}
                    onInput={(e) => {
                      const value = e.currentTarget.value;
                      set("metadata", form.metadata.map((r, i) => (i === index ? { ...r, value } : r)));
                    }}
                    data-testid="metadata-value"
                  />
                </div>
                <button
                  type="button"
                  class="button secondary small"
                  aria-label={`Remove metadata row ${index + 1}`}
                  onClick={() => {
                    set("metadata", form.metadata.filter((_, i) => i !== index));
                    setMetaIds((ids) => ids.filter((_, i) => i !== index));
                  }}
                >
                  Remove
                </button>
              </div>
            );
          })}
          <button
            type="button"
            class="button secondary small"
            onClick={() => {
              set("metadata", [...form.metadata, { key: "", value: "" }]);
              setMetaIds((ids) => [...ids, ++rowIds.current]);
            }}
            disabled={form.metadata.length >= 16}
            data-testid="metadata-add"
          >
            Add metadata
          </button>
        </fieldset>

        <div class="actions">
          <button type="submit" class="button" disabled={busy} data-testid="new-task-submit">
            {busy ? "Submitting…" : "Submit task"}
          </button>
          <a href={href.tasks()} class="button secondary">Back to tasks</a>
        </div>
      </form>
    </section>
  );
}

function focusFirstError(): void {
  // after the render that marks the fields
  requestAnimationFrame(() => {
    const first = document.querySelector<HTMLElement>('[aria-invalid="true"], [data-testid="new-task-error"]');
    if (first) {
      if (!first.hasAttribute("tabindex") && !/^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(first.tagName)) first.setAttribute("tabindex", "-1");
      first.focus();
    }
  });
}
