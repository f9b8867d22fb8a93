// A model's content hash (sha256 of the whole GGUF file): the one implementation lives in util/ so that
// the training layer (adapters name their base by it) can use it too.
export { defaultCacheDir, hashFile, sha256 } from '../../util/file-hash.ts';
