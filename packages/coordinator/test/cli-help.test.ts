import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import pino from 'pino';
import { buildProgram } from '../src/cli/main.js';
import { loadCliSettings } from '../src/config.js';

/** Every command below `command` (itself included), with its path: `sandfleet jobs list`. */
function walk(command: Command, prefix = ''): Array<{ path: string; command: Command }> {
  const path = `${prefix}${command.name()}`;
  return [{ path, command }, ...command.commands.flatMap((sub) => walk(sub, `${path} `))];
}

describe('sandfleet --help', () => {
  const program = buildProgram(loadCliSettings({}), pino({ level: 'silent' }));
  const commands = walk(program);

  it('covers the whole command tree', () => {
    const paths = commands.map((c) => c.path);
    for (const expected of ['sandfleet serve', 'sandfleet up', 'sandfleet jobs list', 'sandfleet admin-tokens revoke', 'sandfleet executor-secret rotate']) {
      assert.ok(paths.includes(expected), `${expected} in ${paths.join(', ')}`);
    }
  });

  it('describes every command, option and argument', () => {
    const missing: string[] = [];
    for (const { path, command } of commands) {
      if (!command.description().trim()) missing.push(`command "${path}"`);
      for (const option of command.options) if (!option.description.trim()) missing.push(`option ${option.flags} of "${path}"`);
      for (const argument of command.registeredArguments) if (!argument.description.trim()) missing.push(`argument <${argument.name()}> of "${path}"`);
    }
    assert.deepEqual(missing, []);
  });

  it('prints the descriptions in each command’s help', () => {
    for (const { path, command } of commands) {
      // Help wraps long lines: compare with runs of white space made one space.
      const flat = (text: string) => text.replace(/\s+/g, ' ');
      const help = flat(command.helpInformation());
      assert.ok(help.includes(flat(command.description())), `help of ${path}`);
      for (const option of command.options.filter((o) => !o.hidden)) assert.ok(help.includes(flat(option.description)), `${option.flags} in the help of ${path}`);
    }
  });
});
