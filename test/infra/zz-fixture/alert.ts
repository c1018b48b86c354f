import { SNSClient, PublishCommand } from '@aws-sdk/client-sns';
const sns = new SNSClient({});
export const handler = async (event: unknown) => { await sns.send(new PublishCommand({ TopicArn: process.env.ALERT_TOPIC_ARN, Message: JSON.stringify(event) })); };
