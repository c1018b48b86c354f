/**
 * CloudWatch embedded metric format records in captured output (Powertools
 * Metrics writes one JSON line per flush): each metric as CloudWatch will
 * store it, identified by namespace, name and its dimension set with values.
 */
export interface EmfMetric {
  namespace: string;
  name: string;
  unit?: string;
  /** The dimension set, in the record's order, with each dimension's value. */
  dimensions: Array<[string, string]>;
  value: unknown;
}

export function emfMetrics(output: readonly string[]): EmfMetric[] {
  const records = output
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit?: string }> }> } });
  return records.flatMap((record) =>
    record._aws.CloudWatchMetrics.flatMap((directive) =>
      directive.Dimensions.flatMap((set) =>
        directive.Metrics.map((m) => ({
          namespace: directive.Namespace,
          name: m.Name,
          ...(m.Unit ? { unit: m.Unit } : {}),
          dimensions: set.map((d) => [d, String(record[d])] as [string, string]),
          value: record[m.Name],
        })),
      ),
    ),
  );
}
