import type { TargetedSubmitEvent } from "preact";
import { useState } from "preact/hooks";
import { usePageTitle } from "../hooks";
import { checkKey } from "../lib/api";
import { ApiError } from "../lib/problem";

export function SignIn({ onSignIn, notice }: { onSignIn: (key: string) => void; notice: string | null }) {
  const heading = usePageTitle("Sign in");
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const value = key.trim();
    if (value === "") {
      setError("Enter an API key.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await checkKey(value);
      onSignIn(value);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        setError("That API key was not accepted. Check it and try again.");
      } else if (err instanceof ApiError && err.status === 0) {
        setError("Cannot reach the API. Check your connection and try again.");
      } else if (err instanceof ApiError) {
        setError(`The API answered ${err.status}: ${err.summary}`);
      } else {
        setError("Sign-in failed.");
      }
      setBusy(false);
    }
  };

  return (
    <main id="main" class="signin">
      <form class="card signin-card" onSubmit={submit} data-testid="sign-in-form" aria-describedby={error ? "signin-error" : undefined} noValidate>
        <h1 ref={heading} tabIndex={-1}>
          Relay <span class="brand-sub">console</span>
        </h1>
        <p>Sign in with an API key. It is kept in this browser tab only, until you sign out or close the tab.</p>
        {notice !== null && (
          <p class="notice" role="status" data-testid="sign-in-notice">{notice}</p>
        )}
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          autoCapitalize="off"
          spellcheck={false}
          value={key}
          onInput={(e) => { setKey(e.currentTarget.value); }}
          aria-invalid={error !== null}
          aria-describedby={error ? "signin-error" : undefined}
          data-testid="sign-in-key"
          required
        />
        {error !== null && (
          <p class="field-error" id="signin-error" role="alert" data-testid="sign-in-error">{error}</p>
        )}
        <button type="submit" class="button" disabled={busy} data-testid="sign-in-submit">
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p class="hint">
          An operator makes keys with <code>relay admin create-key --tenant NAME</code>.
        </p>
      </form>
    </main>
  );
}
