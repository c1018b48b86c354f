import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { LifeboatConfig } from '../../functions/lib/config/schema.ts';

export type AlertSubscriber = LifeboatConfig['alerts']['subscribers'][number];

export interface AlertsProps {
  /** Prefix for the KMS alias and the topic's display name, e.g. the deployment name. */
  readonly aliasPrefix: string;
  /** Who is told: email, https, sqs or lambda endpoints. @default [] */
  readonly subscribers?: readonly AlertSubscriber[];
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The alert topic (SSE-KMS under its own key, TLS only) and its subscriptions.
 * CloudWatch alarms publish to it, so the key and topic policies let
 * CloudWatch in; Lambda publishers get access through `grantPublish`.
 */
export class Alerts extends Construct {
  public readonly topic: sns.Topic;
  /** Encrypts the topic's messages at rest. */
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlertsProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.key = new kms.Key(this, 'Key', {
      description: `lifeboat ${props.aliasPrefix}: encrypts the alert topic.`,
      enableKeyRotation: true,
      alias: `alias/${props.aliasPrefix}/alerts`,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Alarm actions publish to an encrypted topic only if CloudWatch may use its key.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `lifeboat ${props.aliasPrefix} alerts`,
      masterKey: this.key,
      enforceSSL: true,
    });
    // The topic policy replaces SNS's default one, so say explicitly that this
    // account's alarms may publish.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowThisAccountsAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );

    (props.subscribers ?? []).forEach((subscriber, index) => {
      this.topic.addSubscription(subscriptionFor(this, `Subscriber${index}`, subscriber));
    });
  }

  /**
   * Publish to the topic: `sns:Publish` on it and, because it is encrypted, the
   * exact KMS actions SNS needs on its key, only through SNS. (Topic.grantPublish
   * would grant `kms:GenerateDataKey*`.)
   */
  public grantPublish(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee, actions: ['sns:Publish'], resourceArns: [this.topic.topicArn] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resourceArns: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `sns.${Stack.of(this).region}.amazonaws.com` } },
    });
  }
}

/**
 * The subscription for one configured subscriber. SQS queues and Lambda
 * functions are referenced by ARN: a queue's own policy must let this topic
 * send to it; a function in this stack's account gets an invoke permission
 * for the topic, one in another account must grant it there.
 */
function subscriptionFor(scope: Construct, id: string, subscriber: AlertSubscriber): sns.ITopicSubscription {
  switch (subscriber.protocol) {
    case 'email':
      return new subscriptions.EmailSubscription(subscriber.endpoint);
    case 'https':
      return new subscriptions.UrlSubscription(subscriber.endpoint, { protocol: sns.SubscriptionProtocol.HTTPS });
    case 'sqs':
      return new subscriptions.SqsSubscription(sqs.Queue.fromQueueArn(scope, id, subscriber.endpoint));
    case 'lambda':
      return new subscriptions.LambdaSubscription(lambda.Function.fromFunctionArn(scope, id, subscriber.endpoint));
  }
}
