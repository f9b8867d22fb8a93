// The caller's key (a primary's API key, or a coordinator's join token): kept in this tab's sessionStorage
// only, never in localStorage or a cookie, so that it leaves with the tab. Changing it re-mounts every panel
// that shows personal data (their `key` prop), so nothing read with one key stays on screen under another.
import { useState } from 'preact/hooks';

const STORAGE_KEY = 'sharedllm.key';

function read(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined; // storage disabled: the key lives in memory only
  }
}

export function useKey(): [string | undefined, (key: string | undefined) => void] {
  const [key, setKey] = useState<string | undefined>(read);
  const update = (next: string | undefined) => {
    try {
      if (next) sessionStorage.setItem(STORAGE_KEY, next);
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // memory only
    }
    setKey(next || undefined);
  };
  return [key, update];
}
