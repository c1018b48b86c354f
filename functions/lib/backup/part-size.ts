/**
 * S3 multipart uploads allow at most 10,000 parts of 5 MiB to 5 GiB. A dump's
 * size is unknown until it ends, so the part size is chosen from the database's
 * size with headroom: a custom-format dump is almost always smaller than the
 * database on disk, and the headroom covers the rare case where it is not
 * (uncompressed bytea is written as hex, twice its size).
 *
 * lib-storage holds about four parts in memory at once (two uploading, one
 * filling, and the copy it concatenates), so the part size is also what keeps
 * the runner's memory flat. `npm run bench` measured peak RSS of 205 MiB with
 * 8 MiB parts, 228 MiB with 23 MiB and 322 MiB with 46 MiB; parts are therefore
 * capped at 24 MiB, which bounds one dump at 240 GiB *compressed* (a far larger
 * database). A dump that grows past that fails clearly instead of exhausting
 * memory or S3's part count.
 */
export const MIB = 1024 * 1024;
export const MIN_PART_SIZE = 8 * MIB;
/** The largest part that keeps the dump handler under 256 MiB of RSS. */
export const MEMORY_SAFE_PART_SIZE = 24 * MIB;
export const MAX_PARTS = 10_000;
/** Parts we plan to use at most, leaving room below S3's cap. */
export const PLANNED_PARTS = 9_000;
export const DEFAULT_HEADROOM = 4;

export interface PartPlan {
  partSize: number;
  /** The largest dump this plan can store; the pipeline fails clearly past it. */
  maxBytes: number;
}

export function planPartSize(estimatedBytes: number, headroom = DEFAULT_HEADROOM): PartPlan {
  const wanted = Math.ceil((Math.max(0, estimatedBytes) * headroom) / PLANNED_PARTS);
  const partSize = Math.min(MEMORY_SAFE_PART_SIZE, Math.max(MIN_PART_SIZE, Math.ceil(wanted / MIB) * MIB));
  return { partSize, maxBytes: partSize * MAX_PARTS };
}
