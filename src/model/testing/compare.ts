// Comparing logits: the largest absolute difference relative to the largest reference logit.

export function maxRelDiff(ours: Float32Array, ref: Float32Array): { maxAbs: number; rel: number } {
  if (ours.length !== ref.length) throw new Error(`length ${ours.length} vs ${ref.length}`);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(ours[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { maxAbs, rel: maxAbs / (scale || 1) };
}

export function argmax(a: Float32Array): number {
  let m = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[m]!) m = i;
  return m;
}
