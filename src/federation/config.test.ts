import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, lanConfig, localTestConfig, validateConfig, wanConfig } from './config.ts';

test('every preset is valid and suspects only after several missed heartbeats', () => {
  for (const preset of [lanConfig(), wanConfig(), localTestConfig()]) {
    assert.equal(validateConfig(preset), preset);
    assert.ok(preset.suspectTimeoutMs >= 3 * preset.heartbeatIntervalMs);
  }
  assert.ok(localTestConfig().heartbeatIntervalMs < lanConfig().heartbeatIntervalMs);
  assert.ok(wanConfig().suspectTimeoutMs > lanConfig().suspectTimeoutMs);
});

test('presets are fresh objects', () => {
  const a = lanConfig();
  a.heartbeatIntervalMs = 1;
  assert.notEqual(lanConfig().heartbeatIntervalMs, 1);
});

test('validateConfig names the setting, the expected and the actual value', () => {
  assert.throws(() => validateConfig({ ...lanConfig(), deadTimeoutMs: 0 }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.setting, 'deadTimeoutMs');
    assert.equal(error.actual, 0);
    return true;
  });
  assert.throws(() => validateConfig({ ...lanConfig(), suspectTimeoutMs: 3_000 }), /suspectTimeoutMs must be at least 2x heartbeatIntervalMs/);
  assert.throws(() => validateConfig({ ...lanConfig(), retryMaxDelayMs: 1 }), ConfigError);
});

test('the stored-body caps fit under maxBodyBytes, or validateConfig says so', () => {
  for (const preset of [lanConfig(), wanConfig(), localTestConfig()]) {
    assert.ok(preset.maxManifestBytes <= preset.maxRegistrationBytes && preset.maxRegistrationBytes <= preset.maxBodyBytes);
  }
  assert.throws(() => validateConfig({ ...lanConfig(), maxManifestBytes: 2 * lanConfig().maxBodyBytes }), /maxManifestBytes must be at most maxBodyBytes/);
});
