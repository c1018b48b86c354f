import { randomBytes } from 'node:crypto';
import type { FaultRule, ProxiedRequest, ScriptedResponse } from './fault-proxy.ts';

/**
 * Fault-proxy rules for local runs only (the integration tests and
 * `npm run demo`, never a deployment): AWS behaviour that moto 5.2.1 lacks,
 * answered in AWS's own wire format in front of the real moto, and scripted
 * faults for tests (throttling, a snapshot that fails, a copy that never ends).
 * None of this is lifeboat code under test: the handlers talk to it exactly as
 * they talk to AWS.
 *
 * What moto lacks, checked against its source:
 * - RDS DescribeAccountAttributes: moto answers HTTP 500. `accountQuotas`
 *   answers it with the caller's real manual snapshot count from moto and a
 *   scripted maximum.
 * - Copying a snapshot shared from another account: moto looks the source ARN
 *   up in the *caller's* account and answers DBSnapshotNotFound. AWS looks it
 *   up in the owner's account, checks that it is shared with the caller and
 *   that the caller may use its KMS key. `crossAccountSnapshotCopy` does those
 *   checks against moto's real state (the snapshot's `restore` attribute, the
 *   key's policy) and then creates the copy in the caller's account with moto's
 *   own API: a stand-in instance (or cluster) named like the source, encrypted
 *   with the target key, snapshotted under the target name with the requested
 *   tags, and deleted again.
 * - KMS KeyManager: moto reports `CUSTOMER` for its aws/rds key; AWS reports
 *   `AWS`. `awsManagedKeys` corrects DescribeKey for keys with an `alias/aws/` alias.
 * - KMS keys of another account: moto looks a key ARN up in the caller's
 *   account. `crossAccountKms` checks the owner's key policy and key state as
 *   AWS does, then runs the call as the owner.
 * - Snapshot status: moto makes snapshots `available` at once. `snapshotStatus`
 *   rewrites the status of matching snapshots (creating → failed, copying forever).
 */

export interface RdsRequest {
  action: string;
  params: URLSearchParams;
  region: string;
  service: string;
  accessKey: string;
}

/** The awsQuery request (RDS, STS) behind a proxied call, if it is one. */
export function queryRequest(req: ProxiedRequest): RdsRequest | undefined {
  const auth = String(req.headers.authorization ?? '');
  const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  if (!scope || req.method !== 'POST') return undefined;
  const type = String(req.headers['content-type'] ?? '');
  if (!type.includes('x-www-form-urlencoded')) return undefined;
  const params = new URLSearchParams(req.body.toString());
  const action = params.get('Action');
  if (!action) return undefined;
  return { action, params, accessKey: scope[1]!, region: scope[2]!, service: scope[3]! };
}

export function rdsRequest(req: ProxiedRequest): RdsRequest | undefined {
  const parsed = queryRequest(req);
  return parsed?.service === 'rds' ? parsed : undefined;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An RDS (awsQuery) error response, as AWS sends it. */
export function rdsError(code: string, message: string, status = 400): ScriptedResponse {
  return {
    status,
    headers: { 'content-type': 'text/xml' },
    body: `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomBytes(8).toString('hex')}</RequestId></ErrorResponse>`,
  };
}

function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1];
}

interface MotoCall {
  service: string;
  region: string;
  /** Act as this account (moto's x-moto-account-id header). */
  account?: string;
  /** Or as the owner of this access key. */
  accessKey?: string;
}

function authHeader(call: MotoCall): string {
  return `AWS4-HMAC-SHA256 Credential=${call.accessKey ?? 'emulator'}/20250101/${call.region}/${call.service}/aws4_request, SignedHeaders=host, Signature=0`;
}

/** An awsQuery call straight to moto (no signature check there). */
export async function motoQuery(upstream: string, call: MotoCall, params: Record<string, string>, version = '2014-10-31'): Promise<{ status: number; text: string }> {
  const response = await fetch(upstream, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      authorization: authHeader(call),
      ...(call.account ? { 'x-moto-account-id': call.account } : {}),
    },
    body: new URLSearchParams({ Version: version, ...params }).toString(),
  });
  return { status: response.status, text: await response.text() };
}

/** A KMS (JSON) call straight to moto. */
export async function motoKms(upstream: string, call: MotoCall, operation: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(upstream, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `TrentService.${operation}`,
      authorization: authHeader({ ...call, service: 'kms' }),
      ...(call.account ? { 'x-moto-account-id': call.account } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Forwards the proxied request to moto unchanged and returns its answer. */
async function forward(upstream: string, req: ProxiedRequest): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !['host', 'content-length', 'connection'].includes(k)) headers[k] = String(v);
  const response = await fetch(new URL(req.url, upstream), { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req.body });
  return { status: response.status, headers: { 'content-type': response.headers.get('content-type') ?? 'text/xml' }, text: await response.text() };
}

/** The account moto attributes an access key to. */
export async function accountOf(upstream: string, accessKey: string, region: string): Promise<string> {
  const out = await motoQuery(upstream, { service: 'sts', region, accessKey }, { Action: 'GetCallerIdentity' }, '2011-06-15');
  return xmlValue(out.text, 'Account') ?? '';
}

/** Throttles the first `times` calls of an RDS action that match `when`. */
export function throttleRds(action: string, times: number, when: (r: RdsRequest) => boolean = () => true): FaultRule & { count: () => number } {
  let seen = 0;
  const rule = ((req: ProxiedRequest) => {
    const r = rdsRequest(req);
    if (!r || r.action !== action || !when(r)) return undefined;
    seen++;
    return seen <= times ? rdsError('Throttling', 'Rate exceeded') : undefined;
  }) as FaultRule & { count: () => number };
  rule.count = () => seen;
  return rule;
}

/** Which quota a QuotaScript is asked about. */
export interface QuotaScope {
  region: string;
  /** The caller's access key (moto attributes it to an account). */
  accessKey: string;
  kind: 'instance' | 'cluster';
}

export interface QuotaScript {
  /**
   * The quota maximum for a given usage. One script serves both sides, so they
   * agree: what DescribeAccountAttributes reports (accountQuotas) and what the
   * strict RDS layer enforces on CreateDB[Cluster]Snapshot and CopyDB[Cluster]Snapshot.
   */
  max: (used: number, scope: QuotaScope) => number;
  /** Answer DescribeAccountAttributes with AccessDenied instead (enforcement stays on). */
  deny?: boolean;
}

/** The caller's manual snapshots of one kind in its region, as moto holds them (copies in progress included). */
export async function manualSnapshotCount(upstream: string, scope: Omit<QuotaScope, 'kind'>, kind: QuotaScope['kind']): Promise<number> {
  const call = { service: 'rds', region: scope.region, accessKey: scope.accessKey };
  const listed = await motoQuery(upstream, call, { Action: kind === 'instance' ? 'DescribeDBSnapshots' : 'DescribeDBClusterSnapshots', SnapshotType: 'manual' });
  return listed.text.split(kind === 'instance' ? '<DBSnapshot>' : '<DBClusterSnapshot>').length - 1;
}

/** DescribeAccountAttributes: the caller's real manual snapshot counts from moto, the scripted maximum. */
export function accountQuotas(upstream: string, script: QuotaScript): FaultRule {
  return async (req) => {
    const r = rdsRequest(req);
    if (!r || r.action !== 'DescribeAccountAttributes') return undefined;
    if (script.deny) return rdsError('AccessDenied', 'User is not authorized to perform: rds:DescribeAccountAttributes', 403);
    const scope = { region: r.region, accessKey: r.accessKey };
    const kinds = [
      ['ManualSnapshots', 'instance'],
      ['ManualClusterSnapshots', 'cluster'],
    ] as const;
    const quotas = (
      await Promise.all(
        kinds.map(async ([name, kind]) => {
          const n = await manualSnapshotCount(upstream, scope, kind);
          return `<AccountQuota><AccountQuotaName>${name}</AccountQuotaName><Used>${n}</Used><Max>${script.max(n, { ...scope, kind })}</Max></AccountQuota>`;
        }),
      )
    ).join('');
    return {
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: `<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeAccountAttributesResult><AccountQuotas>${quotas}</AccountQuotas></DescribeAccountAttributesResult><ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata></DescribeAccountAttributesResponse>`,
    };
  };
}

/**
 * Rewrites the Status of matching snapshots in DescribeDBSnapshots /
 * DescribeDBClusterSnapshots answers: `status(n)` for the n-th matching call
 * (0-based), or undefined to leave moto's answer alone.
 */
export function snapshotStatus(upstream: string, match: (identifier: string, r: RdsRequest) => boolean, status: (n: number) => string | undefined): FaultRule {
  let n = 0;
  return async (req) => {
    const r = rdsRequest(req);
    if (!r || (r.action !== 'DescribeDBSnapshots' && r.action !== 'DescribeDBClusterSnapshots')) return undefined;
    const id = r.params.get('DBSnapshotIdentifier') ?? r.params.get('DBClusterSnapshotIdentifier');
    if (!id || !match(id, r)) return undefined;
    const scripted = status(n++);
    if (!scripted) return undefined;
    const upstreamAnswer = await forward(upstream, req);
    return { status: upstreamAnswer.status, headers: upstreamAnswer.headers, body: upstreamAnswer.text.replace(/<Status>[^<]*<\/Status>/g, `<Status>${scripted}</Status>`) };
  };
}

/** Answers an RDS action with an error for matching requests while `enabled()` says so. */
export function failRds(action: string, code: string, message: string, when: (r: RdsRequest) => boolean = () => true): FaultRule {
  return (req) => {
    const r = rdsRequest(req);
    return r && r.action === action && when(r) ? rdsError(code, message) : undefined;
  };
}

/** KMS DescribeKey: KeyManager AWS for keys behind an `alias/aws/...` alias, as in AWS. */
export function awsManagedKeys(upstream: string): FaultRule {
  return async (req) => {
    if (req.headers['x-amz-target'] !== 'TrentService.DescribeKey') return undefined;
    const answer = await forward(upstream, req);
    if (answer.status !== 200) return { status: answer.status, headers: answer.headers, body: answer.text };
    const json = JSON.parse(answer.text) as { KeyMetadata?: { KeyId?: string; KeyManager?: string } };
    const keyId = json.KeyMetadata?.KeyId;
    if (keyId) {
      const aliases = await forward(upstream, { ...req, headers: { ...req.headers, 'x-amz-target': 'TrentService.ListAliases' }, body: Buffer.from(JSON.stringify({ KeyId: keyId })) });
      const list = (JSON.parse(aliases.text) as { Aliases?: Array<{ AliasName?: string }> }).Aliases ?? [];
      if (list.some((a) => a.AliasName?.startsWith('alias/aws/'))) json.KeyMetadata!.KeyManager = 'AWS';
    }
    return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify(json) };
  };
}

interface PolicyStatement {
  Effect?: string;
  Principal?: unknown;
  Action?: string | string[];
}

/**
 * Whether the Allow statements of a key policy let `account` (its root, or
 * anyone) perform `action`, with IAM's `*` wildcards (`kms:GenerateDataKey*`).
 * Deny statements and conditions are not evaluated.
 */
export function keyPolicyAllows(policy: string, account: string, action: string): boolean {
  const statements = ([] as PolicyStatement[]).concat((JSON.parse(policy) as { Statement?: PolicyStatement | PolicyStatement[] }).Statement ?? []);
  const matches = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(action);
  return statements.some((s) => {
    if (s.Effect !== 'Allow') return false;
    const principals = s.Principal === '*' ? ['*'] : ([] as unknown[]).concat((s.Principal as { AWS?: unknown } | undefined)?.AWS ?? []);
    const forAccount = principals.some((p) => p === '*' || p === account || p === `arn:aws:iam::${account}:root`);
    return forAccount && ([] as string[]).concat(s.Action ?? []).some(matches);
  });
}

/** Whether a key policy lets `account` use the key for a snapshot copy (Decrypt and CreateGrant). */
export function keyPolicyGrants(policy: string, account: string): boolean {
  return keyPolicyAllows(policy, account, 'kms:Decrypt') && keyPolicyAllows(policy, account, 'kms:CreateGrant');
}

const kmsError = (type: string, message: string): ScriptedResponse => ({ status: 400, body: JSON.stringify({ __type: type, message }) });

/** KMS operations a key policy can grant to another account. */
const CROSS_ACCOUNT_KMS = new Set(['Encrypt', 'Decrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'DescribeKey', 'CreateGrant']);

/**
 * KMS calls on a key of another account, by key ARN, as AWS answers them: moto
 * looks every key up in the caller's own account and answers NotFoundException.
 * AWS allows the call when the owner's key policy grants it to the caller's
 * account (the production role's IAM policy is assumed to allow it too), refuses
 * it with AccessDeniedException otherwise, and with DisabledException when the
 * key is disabled. Allowed calls are forwarded to moto as the key's owner.
 * Lifeboat needs this for the vault's recovery key: production may only
 * kms:Encrypt with it, the vault decrypts with it.
 */
export function crossAccountKms(upstream: string): FaultRule {
  const accounts = new Map<string, Promise<string>>();
  return async (req) => {
    const target = req.headers['x-amz-target'];
    const operation = typeof target === 'string' && target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : undefined;
    if (!operation || !CROSS_ACCOUNT_KMS.has(operation)) return undefined;
    const keyArn = (JSON.parse(req.body.toString() || '{}') as { KeyId?: string }).KeyId ?? '';
    const [, , , keyRegion, owner] = keyArn.split(':');
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization ?? ''));
    if (!keyArn.startsWith('arn:') || !keyArn.includes(':key/') || !owner || !scope) return undefined;
    const [, accessKey, region] = scope as unknown as [string, string, string];
    if (!accounts.has(accessKey)) accounts.set(accessKey, accountOf(upstream, accessKey, region));
    const caller = await accounts.get(accessKey)!;
    if (!caller || caller === owner) return undefined;
    if (keyRegion !== region) return kmsError('NotFoundException', `Invalid arn ${keyArn}: the key is not in ${region}.`);
    const asOwner = { service: 'kms', region, account: owner };
    const policy = await motoKms(upstream, asOwner, 'GetKeyPolicy', { KeyId: keyArn, PolicyName: 'default' });
    if (policy.status !== 200) return kmsError('NotFoundException', `Key '${keyArn}' does not exist`);
    if (!keyPolicyAllows(String(policy.json.Policy ?? '{}'), caller, `kms:${operation}`)) {
      return kmsError('AccessDeniedException', `User: arn:aws:iam::${caller}:root is not authorized to perform: kms:${operation} on resource: ${keyArn} because no resource-based policy allows the kms:${operation} action`);
    }
    const described = await motoKms(upstream, asOwner, 'DescribeKey', { KeyId: keyArn });
    if ((described.json.KeyMetadata as { KeyState?: string } | undefined)?.KeyState === 'Disabled') return kmsError('DisabledException', `${keyArn} is disabled.`);
    const answer = await forward(upstream, { ...req, headers: { ...req.headers, 'x-moto-account-id': owner } });
    return { status: answer.status, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: answer.text };
  };
}

let queue: Promise<unknown> = Promise.resolve();
const serialised = <T>(fn: () => Promise<T>): Promise<T> => {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
};

/** CopyDBSnapshot / CopyDBClusterSnapshot of a snapshot owned by another account, as AWS does it (see the file comment). */
export function crossAccountSnapshotCopy(upstream: string): FaultRule {
  return async (req) => {
    const r = rdsRequest(req);
    if (!r || (r.action !== 'CopyDBSnapshot' && r.action !== 'CopyDBClusterSnapshot')) return undefined;
    const cluster = r.action === 'CopyDBClusterSnapshot';
    const sourceArn = r.params.get(cluster ? 'SourceDBClusterSnapshotIdentifier' : 'SourceDBSnapshotIdentifier') ?? '';
    if (!sourceArn.startsWith('arn:')) return undefined;
    const [, , , sourceRegion, owner, , sourceId] = sourceArn.split(':');
    const caller = await accountOf(upstream, r.accessKey, r.region);
    if (!owner || owner === caller) return undefined;
    return serialised(async () => {
      const notFound = rdsError(cluster ? 'DBClusterSnapshotNotFoundFault' : 'DBSnapshotNotFound', `${cluster ? 'DBClusterSnapshot' : 'DBSnapshot'} ${sourceId} not found.`, 404);
      if (sourceRegion !== r.region) return rdsError('InvalidParameterValue', 'A shared encrypted snapshot can only be copied within its region.');
      const asOwner = { service: 'rds', region: sourceRegion, account: owner };
      const described = await motoQuery(upstream, asOwner, cluster ? { Action: 'DescribeDBClusterSnapshots', DBClusterSnapshotIdentifier: sourceId! } : { Action: 'DescribeDBSnapshots', DBSnapshotIdentifier: sourceId! });
      if (described.status !== 200) return notFound;
      const attributes = await motoQuery(upstream, asOwner, cluster ? { Action: 'DescribeDBClusterSnapshotAttributes', DBClusterSnapshotIdentifier: sourceId! } : { Action: 'DescribeDBSnapshotAttributes', DBSnapshotIdentifier: sourceId! });
      const shared = [...attributes.text.matchAll(/<AttributeValue>([^<]*)<\/AttributeValue>/g)].map((m) => m[1]);
      if (!shared.includes(caller) && !shared.includes('all')) return notFound;

      const sourceKey = xmlValue(described.text, 'KmsKeyId');
      const encrypted = (xmlValue(described.text, cluster ? 'StorageEncrypted' : 'Encrypted') ?? 'false') === 'true';
      if (encrypted && sourceKey) {
        const keyRegion = sourceKey.startsWith('arn:') ? sourceKey.split(':')[3]! : sourceRegion;
        const policy = await motoKms(upstream, { service: 'kms', region: keyRegion, account: owner }, 'GetKeyPolicy', { KeyId: sourceKey, PolicyName: 'default' });
        if (policy.status !== 200 || !keyPolicyGrants(String(policy.json.Policy ?? '{}'), caller)) {
          return rdsError('KMSKeyNotAccessibleFault', `The source snapshot KMS key [${sourceKey}] does not exist, is not enabled or you do not have permissions to access it.`);
        }
      }
      const asCaller = { service: 'rds', region: r.region, account: caller };
      let targetKey = r.params.get('KmsKeyId') ?? undefined;
      if (targetKey) {
        const key = await motoKms(upstream, { service: 'kms', region: r.region, account: caller }, 'DescribeKey', { KeyId: targetKey });
        if (key.status !== 200) return rdsError('KMSKeyNotAccessibleFault', `The target KMS key [${targetKey}] does not exist, is not enabled or you do not have permissions to access it.`);
        targetKey = String((key.json.KeyMetadata as { Arn?: string }).Arn);
      }
      const tagParams = Object.fromEntries([...r.params.entries()].filter(([k]) => k.startsWith('Tags.')));
      const targetId = r.params.get(cluster ? 'TargetDBClusterSnapshotIdentifier' : 'TargetDBSnapshotIdentifier')!;
      const sourceDb = xmlValue(described.text, cluster ? 'DBClusterIdentifier' : 'DBInstanceIdentifier') ?? `standin-${randomBytes(3).toString('hex')}`;
      const engine = xmlValue(described.text, 'Engine') ?? (cluster ? 'aurora-postgresql' : 'postgres');
      const encryption: Record<string, string> = targetKey ? { StorageEncrypted: 'true', KmsKeyId: targetKey } : {};
      const standIn = cluster
        ? await motoQuery(upstream, asCaller, { Action: 'CreateDBCluster', DBClusterIdentifier: sourceDb, Engine: engine, MasterUsername: 'standin', MasterUserPassword: 'standin-password', ...encryption })
        : await motoQuery(upstream, asCaller, {
            Action: 'CreateDBInstance',
            DBInstanceIdentifier: sourceDb,
            Engine: engine,
            DBInstanceClass: 'db.t3.micro',
            AllocatedStorage: xmlValue(described.text, 'AllocatedStorage') ?? '20',
            MasterUsername: 'standin',
            MasterUserPassword: 'standin-password',
            ...encryption,
          });
      if (standIn.status !== 200) return { status: standIn.status, headers: { 'content-type': 'text/xml' }, body: standIn.text };
      try {
        const created = await motoQuery(
          upstream,
          asCaller,
          cluster
            ? { Action: 'CreateDBClusterSnapshot', DBClusterIdentifier: sourceDb, DBClusterSnapshotIdentifier: targetId, ...tagParams }
            : { Action: 'CreateDBSnapshot', DBInstanceIdentifier: sourceDb, DBSnapshotIdentifier: targetId, ...tagParams },
        );
        const from = cluster ? 'CreateDBClusterSnapshot' : 'CreateDBSnapshot';
        const to = cluster ? 'CopyDBClusterSnapshot' : 'CopyDBSnapshot';
        return { status: created.status, headers: { 'content-type': 'text/xml' }, body: created.text.split(from).join(to) };
      } finally {
        await motoQuery(
          upstream,
          asCaller,
          cluster ? { Action: 'DeleteDBCluster', DBClusterIdentifier: sourceDb, SkipFinalSnapshot: 'true' } : { Action: 'DeleteDBInstance', DBInstanceIdentifier: sourceDb, SkipFinalSnapshot: 'true' },
        );
      }
    });
  };
}

/** Credentials of an account on the shared moto server, by assuming a role there (moto attributes them to the role's account). */
export async function credentialsFor(account: string, roleName = 'lifeboat-test'): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string }> {
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const sts = new STSClient({ region: process.env.AWS_REGION ?? 'eu-west-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const out = await sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${roleName}`, RoleSessionName: 'lifeboat-test' }));
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
}

/** Makes every SDK client created from now on in this test process act as `account`. */
export async function actAsAccount(account: string): Promise<void> {
  const c = await credentialsFor(account, 'production');
  process.env.AWS_ACCESS_KEY_ID = c.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = c.secretAccessKey;
  process.env.AWS_SESSION_TOKEN = c.sessionToken;
}
