import { describe, expect, it } from 'vitest';
import { groupBackupDirectories, isCommitted } from '../../functions/lib/backup/catalog.ts';

/** Issue 12, must-show 7: one rule for what a backup is, shared by the listing and retention. */
describe('the backup catalog rules', () => {
  it('groups objects by backup directory, sets aside strays, and commits a directory only by its own manifest', () => {
    // Prepare
    const keys = [
      'backups/db/20261207T030000Z-aaaaaa/dump.enc',
      'backups/db/20261207T030000Z-aaaaaa/globals.enc',
      'backups/db/20261207T030000Z-aaaaaa/manifest.json',
      'backups/db/20261207T040000Z-bbbbbb/dump.enc',
      'backups/db/20261207T040000Z-bbbbbb/sub/manifest.json',
      'backups/db/stray.json',
      'backups/dbx/20261207T050000Z-cccccc/manifest.json',
    ].map((key) => ({ key }));

    // Act
    const { dirs, strays } = groupBackupDirectories(keys, 'backups/', 'db');

    // Assess
    expect([...dirs.keys()].sort()).toEqual(['20261207T030000Z-aaaaaa', '20261207T040000Z-bbbbbb']);
    expect(strays.map((s) => s.key)).toEqual(['backups/db/stray.json', 'backups/dbx/20261207T050000Z-cccccc/manifest.json']);
    expect(isCommitted(dirs.get('20261207T030000Z-aaaaaa')!, 'backups/', 'db', '20261207T030000Z-aaaaaa')).toBe(true);
    expect(isCommitted(dirs.get('20261207T040000Z-bbbbbb')!, 'backups/', 'db', '20261207T040000Z-bbbbbb')).toBe(false);
  });
});
