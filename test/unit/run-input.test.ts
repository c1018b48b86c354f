import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runInput } from '../../cli/commands/run.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import { backupRunInput, retentionRunInput, SOURCE_RETENTION_LOCATIONS } from '../../events/schedules.ts';

const example = JSON.parse(readFileSync(new URL('../../lifeboat.config.example.json', import.meta.url), 'utf8'));
// A vault policy too, so there is a vault target that production must not run.
example.plans[0].retention.vault = { keepLast: 30 };
const config = parseConfig(example);

describe('lifeboat run inputs', () => {
  it('sends each workflow the input its schedule sends', () => {
    expect(runInput('backup', config, { plan: 'nightly' })).toEqual(backupRunInput(config, 'nightly'));
    expect(runInput('retention', config, { plan: 'nightly' })).toEqual(retentionRunInput(config, 'nightly', { locations: SOURCE_RETENTION_LOCATIONS }));
    expect(retentionRunInput(config, 'nightly').targets.some((t) => t.location === 'vault')).toBe(true);
    expect((runInput('retention', config, { plan: 'nightly' }) as { targets: { location: string }[] }).targets.some((t) => t.location === 'vault')).toBe(false);
    expect(runInput('drill', config, {})).toEqual({});
  });

  it('narrows every workflow to one database', () => {
    expect(runInput('backup', config, { plan: 'nightly', database: 'orders' })).toEqual({ planId: 'nightly', databaseIds: ['orders'] });
    expect((runInput('retention', config, { plan: 'nightly', database: 'orders' }) as { targets: { databaseId: string }[] }).targets.every((t) => t.databaseId === 'orders')).toBe(true);
    expect(runInput('drill', config, { database: 'billing' })).toEqual({ databaseIds: ['billing'] });
    expect(runInput('drill', config, { database: 'billing', backup: '20260301T000000Z-abcdef' })).toEqual({ databaseIds: ['billing'], backupId: '20260301T000000Z-abcdef' });
    expect(() => runInput('drill', config, { database: 'ghost' })).toThrow(/--database: "ghost" is not in the config/);
  });
});
