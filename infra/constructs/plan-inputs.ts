import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';

/** Where a plan's run input lies: what the schedule passes instead of the databases. */
export interface PlanInputLocation {
  readonly bucket: string;
  readonly key: string;
}

export interface PlanInputsProps {
  /** Plan id → the full run input (planId, maxConcurrency, databases ...). */
  readonly inputs: ReadonlyMap<string, Record<string, unknown>>;
}

/**
 * The plans' run inputs as S3 assets, published by `cdk deploy` with the rest
 * of the assets (no custom resource, no extra function). The object key is the
 * content hash, so a config change is a new object and a new schedule input;
 * an object never changes under a running execution.
 *
 * Why: a schedule carries its input inline, and EventBridge Scheduler (and a
 * Step Functions execution input) stop at 256 KB, about 500 databases in a
 * plan. The schedule passes `{ planId, planInput: { bucket, key } }` and the
 * backup workflow's first state reads the object (docs/limits.md).
 */
export class PlanInputs extends Construct {
  /** Plan id → its asset. */
  public readonly assets = new Map<string, s3assets.Asset>();

  constructor(scope: Construct, id: string, props: PlanInputsProps) {
    super(scope, id);
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-plan-inputs-'));
    for (const [planId, input] of props.inputs) {
      const path = join(dir, `${planId}.json`);
      writeFileSync(path, `${JSON.stringify(input, null, 2)}\n`);
      this.assets.set(planId, new s3assets.Asset(this, `Plan-${planId}`, { path }));
    }
  }

  /** The location a plan's schedule passes. */
  public location(planId: string): PlanInputLocation {
    const asset = this.assets.get(planId);
    if (!asset) throw new Error(`No run input for plan "${planId}"`);
    return { bucket: asset.s3BucketName, key: asset.s3ObjectKey };
  }

  /** Read exactly the plans' input objects (s3:GetObject on each object, nothing else). */
  public grantRead(grantee: iam.IGrantable): void {
    if (this.assets.size === 0) return;
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [...this.assets.values()].map((asset) => asset.bucket.arnForObjects(asset.s3ObjectKey)),
    });
  }
}
