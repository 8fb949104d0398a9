import assert from 'node:assert/strict';
import { it } from 'node:test';
import { EXECUTOR_VERSION } from '@sandfleet/executor';
import { executorCompatibility } from '../src/executor-compatibility.js';
import { COORDINATOR_VERSION } from '../src/version.js';

it('our executor is compatible with our coordinator (the versions move together)', () => {
  assert.equal(COORDINATOR_VERSION, EXECUTOR_VERSION);
  assert.equal(executorCompatibility(EXECUTOR_VERSION, COORDINATOR_VERSION, true), 'up-to-date');
});

it('decides as Sourcegraph: same major, minor within one; else outdated or ahead', () => {
  const cases: [string, string, boolean, ReturnType<typeof executorCompatibility>][] = [
    ['5.3.0', '5.3.0', true, 'up-to-date'],
    ['5.2.9', '5.3.0', true, 'up-to-date'],
    ['5.4.0', '5.3.0', true, 'up-to-date'],
    ['5.1.0', '5.3.0', true, 'outdated'],
    ['5.5.0', '5.3.0', true, 'version-ahead'],
    ['4.5.0', '5.0.0', true, 'outdated'],
    ['6.0.0', '5.3.0', true, 'version-ahead'],
    ['v5.3.1', '5.3.0', true, 'up-to-date'],
    ['5.1.0', '5.3.0', false, null],
    ['0.0.0+dev', '5.3.0', true, null],
    ['dev', '5.3.0', true, null],
    ['5.3.0', '0.0.0+dev', true, null],
    ['', '5.3.0', true, null],
    ['not a version', '5.3.0', true, null],
    ['123_2026-11-20_abcdef', '5.3.0', true, 'version-ahead'],
    ['5.3.0', '123_2026-11-20_abcdef', true, 'outdated'],
    ['100_2026-11-01_abc', '123_2026-11-20_abcdef', true, 'up-to-date'],
    ['100_2026-09-01_abc', '123_2026-11-20_abcdef', true, 'outdated'],
    ['100_2027-01-20_abc', '123_2026-11-20_abcdef', true, 'version-ahead'],
  ];
  for (const [executor, coordinator, active, expected] of cases) {
    assert.equal(executorCompatibility(executor, coordinator, active), expected, `${executor} vs ${coordinator}`);
  }
});
