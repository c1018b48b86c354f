/**
 * RDS IAM database authentication: instead of a stored password, the runner
 * signs a 15-minute token for `rds-db:connect` with its own role and sends it as
 * the password (TLS required). The CDK app grants `rds-db:connect` on exactly
 * `dbuser:<resourceId>/<username>` (connection.iamAuth).
 *
 * Signing is behind IamAuthTokenSigner so the connection code does not depend
 * on the signer package: `@aws-sdk/rds-signer` (the SDK's Signer) is the
 * production implementation, loaded on first use (bundled into the runner).
 */

/** What a token is signed for: the endpoint and user the client connects as. */
export interface IamAuthTokenRequest {
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly region: string;
}

export type IamAuthTokenSigner = (request: IamAuthTokenRequest) => Promise<string>;

/** The slice of `@aws-sdk/rds-signer` this module uses. */
interface RdsSignerModule {
  Signer: new (config: IamAuthTokenRequest) => { getAuthToken(): Promise<string> };
}

/** Raised when no signer is available: the package is missing from the runner image. */
export class IamAuthUnavailableError extends Error {
  override readonly name = 'IamAuthUnavailableError';
}

/**
 * The production signer: `new Signer({ hostname, port, username, region }).getAuthToken()`,
 * with the default credential chain (the function's or task's role).
 *
 * @param load how the module is loaded (tests pass a fake)
 */
export function rdsSignerTokens(load: () => Promise<unknown> = () => import('@aws-sdk/rds-signer')): IamAuthTokenSigner {
  let module: Promise<RdsSignerModule> | undefined;
  return async (request) => {
    module ??= load().then(
      (m) => m as RdsSignerModule,
      (error: unknown) => {
        module = undefined;
        throw new IamAuthUnavailableError(
          `RDS IAM authentication needs ${RDS_SIGNER_PACKAGE}, which this runner could not load (${(error as Error).message}). ` +
            'Next step: add it to package.json dependencies and rebuild the runner image, or use connection.secretArn.',
        );
      },
    );
    const { Signer } = await module;
    return new Signer({ hostname: request.hostname, port: request.port, username: request.username, region: request.region }).getAuthToken();
  };
}

/** Named in messages; the import above is a literal so that bundlers include the package. */
const RDS_SIGNER_PACKAGE = '@aws-sdk/rds-signer';
