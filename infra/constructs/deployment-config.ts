import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stage } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { deploymentConfigBytes, deploymentConfigEnvironment, sha256Hex } from '../../functions/lib/config/deployment.ts';
import { parseConfig } from '../../functions/lib/config/load.ts';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';

export interface DeploymentConfigObjectProps {
  /** The validated config as this source sees it. */
  readonly config: LifeboatConfig;
}

/**
 * The deployed config as one S3 object (an asset `cdk deploy` publishes), and
 * its sha256, which goes into each function's environment: the functions
 * read their databases, plans and drills from it and refuse an object that is
 * not byte for byte the one deployed (functions/lib/config/deployment.ts). The
 * config holds names, ARNs and settings, never a password.
 */
export class DeploymentConfigObject extends Construct {
  public readonly asset: s3assets.Asset;
  /** sha256 (hex) of the object's bytes. */
  public readonly sha256: string;

  constructor(scope: Construct, id: string, props: DeploymentConfigObjectProps) {
    super(scope, id);
    const bytes = deploymentConfigBytes(props.config);
    // The functions parse these bytes with the same schema: a config they would refuse must not deploy.
    parseConfig(JSON.parse(bytes.toString('utf8')), `the deployed config object of ${this.node.path}`);
    this.sha256 = sha256Hex(bytes);
    // Inside the cloud assembly, not a temp dir: it goes where the synth output goes.
    const dir = join(Stage.of(this)?.outdir ?? '.', 'lifeboat-config');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${this.sha256}.json`);
    writeFileSync(path, bytes);
    this.asset = new s3assets.Asset(this, 'Object', { path });
  }

  /** The environment variables that name the object and its hash. */
  public environment(): Record<string, string> {
    return deploymentConfigEnvironment({ bucket: this.asset.s3BucketName, key: this.asset.s3ObjectKey, sha256: this.sha256 });
  }

  /** s3:GetObject on exactly this object. */
  public grantRead(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [this.asset.bucket.arnForObjects(this.asset.s3ObjectKey)] });
  }
}
