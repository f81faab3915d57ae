import { usePageTitle } from "../hooks";
import { href } from "../lib/router";

export function NotFoundPage() {
  const heading = usePageTitle("Not found");
  return (
    <section class="page narrow" data-testid="page-not-found">
      <h1 ref={heading} tabIndex={-1}>Page not found</h1>
      <p>There is nothing at this address.</p>
      <p><a href={href.tasks()}>Go to your tasks</a></p>
    </section>
  );
}

/** What a missing task and another tenant's task both look like (the API answers 404 for both). */
export function TaskNotFound({ id }: { id: string }) {
  const heading = usePageTitle("Task not found");
  return (
    <section class="page narrow" data-testid="not-found">
      <h1 ref={heading} tabIndex={-1}>Task not found</h1>
      <p>
        There is no task <code class="mono break">{id}</code> for this API key.
      </p>
      <p><a href={href.tasks()}>Back to your tasks</a></p>
    </section>
  );
}
