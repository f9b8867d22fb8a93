// Which files of a source tree (Go, Python, kernel documentation) make a corpus of hand-written text, and
// how a file is named and cleaned there. Pure functions over paths and text; scripts/fetch-corpora.ts walks
// the trees and applies them.

/** Go's marker for generated files (https://go.dev/s/generatedcode), anywhere before the package clause. */
const GO_GENERATED = /^\/\/ Code generated .* DO NOT EDIT\.$/m;

/** A hand-written, non-test Go file of the standard library: no _test.go, testdata, vendor or generated code. */
export function isHandWrittenGo(path: string, text: string): boolean {
  if (!path.endsWith('.go') || path.endsWith('_test.go')) return false;
  const parts = path.split('/');
  if (parts.includes('testdata') || parts.includes('vendor')) return false;
  const packageClause = text.search(/^package\s/m);
  return !GO_GENERATED.test(packageClause >= 0 ? text.slice(0, packageClause) : text);
}

/** Python standard-library folders that are tests or test data, at any depth. */
const PYTHON_TEST_DIRS = new Set(['test', 'tests', 'idle_test', 'unittest_test']);
/** Folders of an installed Python that are not its standard library. */
const PYTHON_NOT_STDLIB = new Set(['site-packages', 'dist-packages', '__pycache__']);

/** A non-test .py file of the standard library (path relative to /usr/lib/python3.N). */
export function isPythonStdlibSource(path: string): boolean {
  if (!path.endsWith('.py')) return false;
  const parts = path.split('/');
  const file = parts[parts.length - 1] ?? '';
  if (/^test_.*\.py$/.test(file) || /_test\.py$/.test(file)) return false;
  if (parts.slice(0, -1).some((d) => PYTHON_TEST_DIRS.has(d) || PYTHON_NOT_STDLIB.has(d))) return false;
  return !parts.slice(0, -1).some((d) => d.startsWith('config-')); // build configuration (Makefile helpers)
}

/**
 * Kernel documentation in English: Documentation/ .rst files outside translations/ (zh_CN, ja_JP, it_IT,
 * ...). Path relative to the package's Documentation/ folder, `.gz` already stripped.
 */
export function isKernelDocEnglish(path: string): boolean {
  return path.endsWith('.rst') && !path.split('/').includes('translations');
}

/** A path inside a tree to a flat corpus file name: `net/http/server.go` -> `net__http__server.go`. */
export function flatName(path: string): string {
  return path.split('/').filter((p) => p.length > 0).join('__');
}

/**
 * Removes control characters other than tab and newline (a stray form feed or NUL in a source file),
 * turns CRLF into LF, drops trailing spaces, ends with one newline. Indentation is kept: it is syntax.
 */
export function cleanSourceText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '')
    .replace(/[ \t]+$/gm, '')
    .replace(/\n*$/, '\n');
}
