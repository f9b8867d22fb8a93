// Per-user adapters (norm gains or LoRA) over a frozen base: the file format, training, the per-sequence
// norm overrides the engine takes, and export to llama.cpp (merged model, LoRA adapter).
export { ADAPTER_KINDS, AdapterBaseMismatchError, AdapterError, adapterBytes, checkAdapterBase, readAdapter, writeAdapter, type Adapter, type AdapterBase, type AdapterKind, type AdapterTraining } from './format.ts';
export { adapterBaseOf } from './base.ts';
export { normOverrides, overridesForSpan } from './overrides.ts';
export { ADAPTER_DEFAULTS, AdapterSession, checkText } from './session.ts';
export { trainAdapter, type TrainAdapterOptions } from './train.ts';
export { exportLora, exportMerged } from './export.ts';
