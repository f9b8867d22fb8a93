// The package as npm sees it: installable on every platform node-llama-cpp ships for (platform binaries only
// as optional dependencies), a name of its own, the `sharedllm` bin, and a tarball without tests.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NODE_LLAMA_CPP_VERSION, candidatePackages } from '../../src/ggml/find.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
interface Manifest {
  name: string;
  license: string;
  bin: Record<string, string>;
  files: string[];
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const require = createRequire(join(root, 'package.json'));

/** os/cpu/libc of an installed package: any of them makes npm refuse it elsewhere (EBADPLATFORM). */
function platformFields(name: string): string[] {
  const m = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;
  return ['os', 'cpu', 'libc'].filter((k) => m[k] !== undefined);
}

test('no platform-specific package outside optionalDependencies', () => {
  for (const name of Object.keys(pkg.dependencies)) {
    assert.ok(!name.startsWith('@node-llama-cpp/'), `${name} is a platform binary: it belongs in optionalDependencies`);
    assert.deepEqual(platformFields(name), [], `${name} declares a platform: it belongs in optionalDependencies`);
  }
  for (const [name, version] of Object.entries(pkg.optionalDependencies)) {
    assert.match(name, /^@node-llama-cpp\//, `${name}: only node-llama-cpp's prebuilt binaries are optional`);
    assert.equal(version, NODE_LLAMA_CPP_VERSION, `${name} is pinned to node-llama-cpp's version`);
  }
  assert.equal(pkg.dependencies['node-llama-cpp'], NODE_LLAMA_CPP_VERSION, 'find.ts names the node-llama-cpp version in use');
});

test('the finder asks only for packages npm can install (ours or node-llama-cpp\'s optional dependencies)', () => {
  const nlc = JSON.parse(readFileSync(join(root, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
  const known = new Set([...Object.keys(pkg.optionalDependencies), ...Object.keys(nlc.optionalDependencies)]);
  const platforms: [NodeJS.Platform, NodeJS.Architecture][] = [['linux', 'x64'], ['linux', 'arm64'], ['linux', 'arm'], ['darwin', 'arm64'], ['darwin', 'x64'], ['win32', 'x64'], ['win32', 'arm64']];
  for (const [platform, arch] of platforms) {
    const wanted = candidatePackages(platform, arch);
    assert.ok(wanted.length > 0, `${platform}-${arch} has candidates`);
    for (const p of wanted) assert.ok(known.has(p), `${p} (for ${platform}-${arch}) is an optional dependency`);
    // The last candidate is the plain one every machine of that platform can run: ours, so always reachable.
    assert.ok(pkg.optionalDependencies[wanted.at(-1)!], `${wanted.at(-1)} is in our optionalDependencies`);
  }
});

test('a name of its own, the `sharedllm` command, a license', () => {
  assert.notEqual(pkg.name, 'sharedllm', "the npm name 'sharedllm' belongs to an unrelated project");
  assert.deepEqual(Object.keys(pkg.bin), ['sharedllm']);
  const bin = join(root, pkg.bin.sharedllm!);
  assert.ok(existsSync(bin), `${pkg.bin.sharedllm} exists`);
  assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  assert.equal(pkg.license, 'MIT');
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  assert.match(license, /^MIT License/);
  assert.match(license, /SharedLLM contributors/);
  assert.equal(pkg.dependencies.tsx, undefined, 'the published package runs compiled JavaScript: tsx is a dev dependency');
  assert.match(pkg.scripts.prepare ?? '', /build/, 'npm pack and a checkout\'s npm install build dist/');
});

test('the tarball holds the command, the compiled code, the model and docs, and no tests', () => {
  // --ignore-scripts: list what the current tree would pack, without rebuilding dist/ under other tests' feet.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const must of ['package.json', 'LICENSE', 'README.md', 'bin/sharedllm.js', 'models/sharedllm-tiny.gguf']) assert.ok(files.includes(must), `${must} is packed`);
  const testish = files.filter((f) => /(^|\/)(test|tests|testing|fixtures)(\/|\.|$)|\.test\.|fuzz|conformance|^src\//.test(f));
  assert.deepEqual(testish, [], 'no tests, test helpers, fuzzers or TypeScript sources in the tarball');
});

test('the build leaves tests, test helpers and fuzzers out of dist/', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const out = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: root, encoding: 'utf8' });
  const ours = out.split('\n').filter((f) => f.startsWith(root) && !f.includes('node_modules'));
  assert.ok(ours.some((f) => f.endsWith('src/cli/main.ts')));
  const testish = ours.filter((f) => /\.test\.ts$|\/testing\/|testing\.ts$|fuzz|conformance/.test(f));
  assert.deepEqual(testish, [], 'a shipped module imports a test helper, or the build config lets tests in');
});

test('README links only to files in the repository, and never to a bare `npx sharedllm`', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const [, target] of readme.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)) {
    if (/^[a-z]+:/.test(target!)) continue; // http(s) links
    assert.ok(existsSync(join(root, target!)), `README links to ${target}, which is not in the repository`);
    assert.ok(pkg.files.some((f) => target!.startsWith(f)), `README links to ${target}, which the package does not ship`);
  }
  assert.ok(!readme.includes('../'), 'no links outside the repository');
  assert.ok(!/npx sharedllm/.test(readme), "`npx sharedllm` outside a checkout runs the unrelated 'sharedllm' package");
});
