// Where the ggml shared libraries live: node-llama-cpp's prebuilt platform packages.
//
// Each package `@node-llama-cpp/<platform>` ships `bins/<platform>/` with libggml-base, libggml and the
// backends (CPU variants for every x86 microarchitecture, CUDA, Vulkan or Metal). We pick the packages that
// fit the running platform, GPU ones first when they are installed and asked for. They are optional
// dependencies (ours and node-llama-cpp's): npm installs those whose os/cpu/libc match and skips the rest, so
// the install works everywhere and this finder says what is missing when it is asked for ggml.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GgmlLoadError } from './errors.ts';

export type GpuMode = 'auto' | 'off' | 'cuda' | 'vulkan' | 'metal';
export const GPU_MODES = ['auto', 'off', 'cuda', 'vulkan', 'metal'] as const satisfies readonly GpuMode[];

export interface BinsDir {
  /** Package name, e.g. `@node-llama-cpp/linux-x64-cuda`. */
  pkg: string;
  /** Folder holding libggml-base, libggml and backends. */
  dir: string;
  gpu: 'cuda' | 'vulkan' | 'metal' | undefined;
}

/** The platform packages to consider, best first, for this OS and CPU. */
export function candidatePackages(platform = process.platform, arch = process.arch): BinsDir['pkg'][] {
  const base = platformName(platform, arch);
  if (!base) return [];
  if (platform === 'darwin') return arch === 'arm64' ? [`@node-llama-cpp/${base}-metal`] : [`@node-llama-cpp/${base}`];
  if (platform === 'linux' && arch === 'x64') {
    return [`@node-llama-cpp/${base}-cuda-ext`, `@node-llama-cpp/${base}-cuda`, `@node-llama-cpp/${base}-vulkan`, `@node-llama-cpp/${base}`];
  }
  if (platform === 'win32' && arch === 'x64') {
    return [`@node-llama-cpp/${base}-cuda-ext`, `@node-llama-cpp/${base}-cuda`, `@node-llama-cpp/${base}-vulkan`, `@node-llama-cpp/${base}`];
  }
  return [`@node-llama-cpp/${base}`];
}

/** The node-llama-cpp release whose prebuilt binaries SharedLLM is built and tested against. */
export const NODE_LLAMA_CPP_VERSION = '3.22.1';

/** Whether this Linux uses musl (Alpine...): node-llama-cpp's Linux builds need glibc. */
function isMusl(platform: string): boolean {
  if (platform !== 'linux') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header !== undefined && header.glibcVersionRuntime === undefined;
}

/**
 * Why no prebuilt can serve this machine, in one line, or undefined when one can be installed.
 * Exported for tests (platform, arch and libc passed in).
 */
export function unsupportedPlatformReason(platform = process.platform, arch = process.arch, musl = isMusl(platform)): string | undefined {
  if (!platformName(platform, arch)) {
    return `node-llama-cpp ships no ggml build for ${platform}-${arch}; SharedLLM runs on Linux (x64, arm64, armv7l, glibc), macOS (arm64, x64) and Windows (x64, arm64)`;
  }
  if (musl) return `node-llama-cpp's Linux builds need glibc and this system uses musl (e.g. Alpine); run SharedLLM on a glibc distribution (Debian, Ubuntu, Fedora) or in a glibc container such as node:20-bookworm`;
  return undefined;
}

function platformName(platform: string, arch: string): string | undefined {
  const os = platform === 'linux' ? 'linux' : platform === 'darwin' ? 'mac' : platform === 'win32' ? 'win' : undefined;
  const cpu = arch === 'x64' ? 'x64' : arch === 'arm64' ? 'arm64' : arch === 'arm' ? 'armv7l' : arch === 'riscv64' ? 'riscv64' : undefined;
  return os && cpu ? `${os}-${cpu}` : undefined;
}

function gpuOf(pkg: string): BinsDir['gpu'] {
  if (pkg.includes('-cuda')) return 'cuda';
  if (pkg.includes('-vulkan')) return 'vulkan';
  if (pkg.includes('-metal')) return 'metal';
  return undefined;
}

/** Installed bins folders for this platform, best first. */
export function installedBins(): BinsDir[] {
  const require = createRequire(import.meta.url);
  const found: BinsDir[] = [];
  // node-llama-cpp's own node_modules too: npm nests its optional packages there when it cannot hoist them.
  let nested: string[] = [];
  try {
    nested = [join(packageRoot(dirname(require.resolve('node-llama-cpp'))), 'node_modules')];
  } catch {
    // node-llama-cpp missing: the hoisted packages may still be there.
  }
  for (const pkg of candidatePackages()) {
    let root: string;
    try {
      // The packages export nothing importable; resolve their folder through node_modules lookup.
      const entry = [...(require.resolve.paths(pkg) ?? []), ...nested];
      const hit = entry.map((p) => join(p, pkg)).find((p) => existsSync(join(p, 'package.json')));
      if (!hit) continue;
      root = hit;
    } catch {
      continue;
    }
    const binsRoot = join(root, 'bins');
    if (!existsSync(binsRoot)) continue;
    for (const sub of readdirSync(binsRoot)) {
      const dir = join(binsRoot, sub);
      if (existsSync(join(dir, libName('ggml-base')))) found.push({ pkg, dir, gpu: gpuOf(pkg) });
    }
  }
  return found;
}

/** Choose the bins folder for a GPU mode; throws a clear error naming what to install. */
export function chooseBins(mode: GpuMode): BinsDir {
  const all = installedBins();
  const cpuOnly = all.filter((b) => b.gpu === undefined);
  let pick: BinsDir | undefined;
  if (mode === 'off') pick = cpuOnly[0] ?? all[0];
  else if (mode === 'auto') pick = all[0];
  else pick = all.find((b) => b.gpu === mode);
  if (!pick) {
    const unsupported = unsupportedPlatformReason();
    const want = mode === 'auto' || mode === 'off' ? candidatePackages().at(-1) : candidatePackages().find((p) => gpuOf(p) === mode);
    throw new GgmlLoadError(
      `no ggml prebuilt for ${process.platform}-${process.arch}${mode === 'auto' || mode === 'off' ? '' : ` with ${mode}`}`,
      { expected: want ?? 'a supported platform', actual: all.map((b) => b.pkg).join(', ') || 'none installed' },
      unsupported ?? (want ? `install it: npm install ${want}@${NODE_LLAMA_CPP_VERSION}` : `no ${mode} build is made for this platform; use --gpu auto`),
    );
  }
  return pick;
}

export function libName(stem: string): string {
  if (process.platform === 'win32') return `${stem}.dll`;
  if (process.platform === 'darwin') return `lib${stem}.dylib`;
  return `lib${stem}.so`;
}

/** Full path of libggml (its file name carries a version, e.g. libggml.v0.5.0.so). */
export function ggmlLibPath(dir: string): string {
  const exact = join(dir, libName('ggml'));
  if (existsSync(exact)) return exact;
  const prefix = process.platform === 'win32' ? 'ggml.' : 'libggml.';
  const hit = readdirSync(dir).find((f) => f.startsWith(prefix) && /\.(so|dylib|dll)$/.test(f));
  if (!hit) throw new GgmlLoadError('libggml not found', { expected: `${dir}/libggml*`, actual: 'missing' }, 'reinstall node-llama-cpp');
  return join(dir, hit);
}

export function packageRoot(from: string): string {
  let d = from;
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
}
