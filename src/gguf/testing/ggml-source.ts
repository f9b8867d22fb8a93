// The ggml type table as ggml's own C source defines it, for checking src/gguf/types.ts against it.
//
// node-llama-cpp ships the llama.cpp source it was built from as a git bundle; we read ggml.h (the enum),
// ggml.c (type_traits: block size and `sizeof(block_xxx)`) and ggml-common.h (the block structs' sizes, from
// their static_asserts) out of it, and evaluate the C constant expressions with a tiny integer evaluator.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaCppBundlePath } from '../../model/testing/vocab.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cacheDir = join(repoRoot, '.cache', 'ggml-src');

/** Text of `path` (e.g. 'ggml/include/ggml.h') in the bundled llama.cpp source, cached on disk. */
export function llamaCppSourceText(path: string): string {
  const out = join(cacheDir, path.replaceAll('/', '__'));
  if (!existsSync(out)) {
    mkdirSync(cacheDir, { recursive: true });
    const dir = mkdtempSync(join(tmpdir(), 'sharedllm-ggml-src-'));
    try {
      execFileSync('git', ['clone', '-q', '--no-checkout', llamaCppBundlePath(), join(dir, 'src')], { stdio: 'ignore' });
      for (const p of ['ggml/include/ggml.h', 'ggml/src/ggml.c', 'ggml/src/ggml-common.h']) {
        const text = execFileSync('git', ['-C', join(dir, 'src'), 'show', `HEAD:${p}`], { maxBuffer: 64 << 20 });
        const target = join(cacheDir, p.replaceAll('/', '__'));
        const tmp = `${target}.${process.pid}.tmp`; // two test processes may extract at once
        writeFileSync(tmp, text);
        renameSync(tmp, target);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return readFileSync(out, 'utf8');
}

export interface SourceGgmlType {
  id: number;
  name: string;
  ggmlName: string;
  blockSize: number;
  typeSize: number;
}

const PRIMITIVE_SIZES: Record<string, number> = {
  ggml_half: 2,
  ggml_half2: 4,
  ggml_fp16_t: 2,
  ggml_bf16_t: 2,
  int8_t: 1,
  uint8_t: 1,
  int16_t: 2,
  uint16_t: 2,
  int32_t: 4,
  uint32_t: 4,
  int64_t: 8,
  float: 4,
  double: 8,
};

/** Every live ggml_type with its block size and bytes per block, read from ggml's C source. */
export function ggmlTypesFromSource(): SourceGgmlType[] {
  const header = stripComments(llamaCppSourceText('ggml/include/ggml.h'));
  const common = stripComments(llamaCppSourceText('ggml/src/ggml-common.h'));
  const ggmlC = typeTraitsBlock(llamaCppSourceText('ggml/src/ggml.c'));

  const enumBody = /enum ggml_type\s*\{([^}]*)\}/.exec(header)?.[1] ?? '';
  const ids = [...enumBody.matchAll(/GGML_TYPE_(\w+)\s*=\s*(\d+)/g)]
    .map((m) => ({ name: m[1] as string, id: Number(m[2]) }))
    .filter((t) => t.name !== 'COUNT');

  const defines = new Map<string, string>();
  for (const m of common.matchAll(/^#define\s+(\w+)\s+([^\n]+)$/gm)) defines.set(m[1] as string, (m[2] as string).trim());
  const sizes = new Map<string, number>(Object.entries(PRIMITIVE_SIZES));
  for (const m of common.matchAll(/static_assert\(sizeof\((block_\w+)\)\s*==\s*([^,]+),/g)) {
    sizes.set(m[1] as string, evaluate(m[2] as string, defines, sizes));
  }

  const traits = new Map<string, { ggmlName: string; blockSize: number; typeSize: number }>();
  for (const m of ggmlC.matchAll(/\[GGML_TYPE_(\w+)\]\s*=\s*\{([^}]*)\}/g)) {
    const body = m[2] as string;
    const field = (f: string): string => new RegExp(`\\.${f}\\s*=\\s*([^,\\n]+)`).exec(body)?.[1]?.trim() ?? '';
    traits.set(m[1] as string, {
      ggmlName: JSON.parse(field('type_name')) as string,
      blockSize: evaluate(field('blck_size'), defines, sizes),
      typeSize: evaluate(field('type_size'), defines, sizes),
    });
  }

  return ids.map(({ name, id }) => {
    const t = traits.get(name);
    if (!t) throw new Error(`no type_traits entry for GGML_TYPE_${name} in ggml.c`);
    return { id, name, ...t };
  });
}

/** The `type_traits[GGML_TYPE_COUNT] = { ... };` initializer of ggml.c, without comments. */
function typeTraitsBlock(ggmlC: string): string {
  const opening = 'type_traits[GGML_TYPE_COUNT] = {';
  const start = ggmlC.indexOf(opening);
  const end = ggmlC.indexOf('\n};', start);
  if (start < 0 || end < 0) throw new Error('type_traits table not found in ggml.c');
  return stripComments(ggmlC.slice(start + opening.length, end));
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** Evaluates a C integer constant expression made of numbers, + - * / ( ), sizeof(T) and macros. */
function evaluate(expr: string, defines: Map<string, string>, sizes: Map<string, number>): number {
  let e = expr;
  for (let round = 0; round < 20 && /[A-Za-z_]/.test(e); round++) {
    e = e.replace(/sizeof\((\w+)\)/g, (_, t: string) => {
      const size = sizes.get(t);
      if (size === undefined) throw new Error(`unknown sizeof(${t}) in '${expr}'`);
      return String(size);
    });
    e = e.replace(/\b[A-Za-z_]\w*\b/g, (id) => {
      const d = defines.get(id);
      if (d === undefined) throw new Error(`unknown identifier ${id} in '${expr}'`);
      return `(${d})`;
    });
  }
  const tokens = e.match(/\d+|[-+*/()]/g) ?? [];
  let i = 0;
  const atom = (): number => {
    const t = tokens[i++];
    if (t === '(') {
      const v = sum();
      i++; // ')'
      return v;
    }
    if (t === '-') return -atom();
    return Number(t);
  };
  const product = (): number => {
    let v = atom();
    while (tokens[i] === '*' || tokens[i] === '/') v = tokens[i++] === '*' ? v * atom() : Math.trunc(v / atom());
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[i] === '+' || tokens[i] === '-') v = tokens[i++] === '+' ? v + product() : v - product();
    return v;
  };
  return sum();
}
