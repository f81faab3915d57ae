// The API key, for this browser tab only: sessionStorage (gone when the tab closes), never
// localStorage, never a cookie or a URL.
const KEY = "relay.console.apiKey";

function tabStorage(): Storage | null {
  try {
    return globalThis.sessionStorage; // may throw where storage is disabled
  } catch {
    return null;
  }
}

export function loadKey(storage: Storage | null = tabStorage()): string | null {
  try {
    const value = storage?.getItem(KEY) ?? null;
    return value !== null && value.trim() !== "" ? value : null;
  } catch {
    return null;
  }
}

export function saveKey(key: string, storage: Storage | null = tabStorage()): void {
  try {
    storage?.setItem(KEY, key);
  } catch {
    // storage disabled or full: the key then lives in memory only, for this page load
  }
}

export function clearKey(storage: Storage | null = tabStorage()): void {
  try {
    storage?.removeItem(KEY);
  } catch {
    // nothing stored
  }
}
