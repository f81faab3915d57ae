import type { TargetedKeyboardEvent, TargetedSubmitEvent } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { useSession } from "../context";
import { useAction } from "../hooks";
import { formatTime } from "../lib/format";
import { ApiError } from "../lib/problem";
import { answerDeadline, answerLength, answerProblem, describeAnswerError } from "../lib/question";
import type { Question, Task } from "../lib/types";

/**
 * The question a `waiting_for_input` task asks, and the form that answers it
 * (POST /v1/tasks/{id}/input with the question's id). It stays mounted while the task page is
 * open: the form shows only while a question waits, and an error answer (a 409 when the question
 * was answered elsewhere meanwhile) stays readable after the question has gone.
 */
export function AnswerBox({
  task,
  question,
  onTask,
  reload,
}: {
  task: Task;
  question: Question | null;
  onTask: (task: Task) => void;
  reload: () => void;
}) {
  const { api } = useSession();
  const action = useAction();
  const [text, setText] = useState("");
  const [invalid, setInvalid] = useState<string | null>(null);
  // The question this form is done with (answered here, or answered elsewhere: a 409), hidden at
  // once rather than when the timeline catches up; `sent` when the answer went from here.
  const [doneWith, setDoneWith] = useState<{ id: string; sent: boolean } | null>(null);
  const textRef = useRef<HTMLTextAreaElement>(null);
  const questionId = question?.id ?? null;
  const { clear } = action;

  // A new question starts a clean form; the same one shown again (after a moment hidden) keeps
  // what was typed.
  const formFor = useRef<string | null>(null);
  useEffect(() => {
    if (questionId === null || questionId === formFor.current) return;
    formFor.current = questionId;
    setText("");
    setInvalid(null);
    clear();
  }, [questionId, clear]);

  const asked = question !== null && question.id !== doneWith?.id ? question : null;
  const open = asked !== null;
  const error = action.error ? describeAnswerError(action.error) : null;
  const sentAndWaiting = doneWith?.sent === true && questionId === doneWith.id;

  const submit = async (event?: TargetedSubmitEvent<HTMLFormElement>) => {
    event?.preventDefault();
    if (asked === null || action.busy) return;
    const id = asked.id;
    const problem = answerProblem(text);
    setInvalid(problem);
    if (problem !== null) {
      textRef.current?.focus();
      return;
    }
    const answered = await action.run(async () => {
      try {
        return await api.answerTask(task.id, text, id);
      } catch (err) {
        if (err instanceof ApiError && describeAnswerError(err).settled) setDoneWith({ id, sent: false });
        throw err;
      }
    });
    if (answered) {
      setDoneWith({ id, sent: true });
      onTask(answered);
    } else {
      reload(); // the record says where the task really is (e.g. answered elsewhere)
    }
  };

  const onKeyDown = (event: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void submit();
    }
  };

  const deadline = asked ? answerDeadline(asked, task) : null;
  const length = answerLength(text);
  const errorBox = error && (
    <div class="error-box" role="alert" data-testid="answer-error" data-status={action.error?.status}>
      <p>
        <strong>{error.headline}</strong>
        {error.detail ? ` ${error.detail}` : ""}
      </p>
      {!open && (
        <button type="button" class="button secondary small" onClick={clear} data-testid="answer-error-dismiss">
          Dismiss
        </button>
      )}
    </div>
  );

  return (
    <>
      {/* announced when a question arrives (a live region must exist before its text changes) */}
      <p class="visually-hidden" role="status">{asked ? `The task asks: ${asked.text}` : ""}</p>
      {asked ? (
        <section class="answer-box" aria-labelledby="answer-title" data-testid="answer-box" data-question-id={asked.id}>
          <h2 id="answer-title">The task asks</h2>
          <p class="question-text pre-wrap" data-testid="answer-question">{asked.text}</p>
          <p class="hint">
            Asked <time dateTime={asked.asked_at}>{formatTime(asked.asked_at)}</time>
            {deadline && (
              <>; without an answer by <time dateTime={deadline.toISOString()}>{formatTime(deadline.toISOString())}</time> it fails</>
            )}
            .
          </p>
          {errorBox}
          <form class="form" onSubmit={submit} noValidate data-testid="answer-form">
            <div class="field">
              <label for="answer-text">Your answer</label>
              <textarea
                id="answer-text"
                ref={textRef}
                rows={4}
                value={text}
                onInput={(e) => {
                  setText(e.currentTarget.value);
                  if (invalid !== null) setInvalid(null);
                }}
                onKeyDown={onKeyDown}
                aria-invalid={invalid !== null}
                aria-describedby={invalid !== null ? "answer-text-error answer-text-hint" : "answer-text-hint"}
                readOnly={action.busy}
                data-testid="answer-text"
                required
              />
              <p class="hint" id="answer-text-hint">
                The task carries on with your answer. Ctrl+Enter sends it.
                {length !== null && ` ${length}`}
              </p>
              {invalid !== null && (
                <p class="field-error" id="answer-text-error" data-testid="field-error">{invalid}</p>
              )}
            </div>
            <div class="actions">
              <button type="submit" class="button" disabled={action.busy} data-testid="answer-submit">
                {action.busy ? "Sending…" : "Send answer"}
              </button>
            </div>
          </form>
        </section>
      ) : (
        <>
          {errorBox}
          {sentAndWaiting && error === null && (
            <p class="notice" role="status" data-testid="answer-sent">Answer sent: the task carries on.</p>
          )}
        </>
      )}
    </>
  );
}
