// Joining typed arrays end to end (token ids of a batch's sequences, hidden states, frames of a reply).

type Typed = Int32Array | Float32Array | Uint8Array;

/** `parts` one after the other in a new array of `Ctor` (a single part is returned as it is). */
export function concatTyped<T extends Typed>(Ctor: new (length: number) => T, parts: readonly T[]): T {
  if (parts.length === 1) return parts[0]!;
  const out = new Ctor(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
