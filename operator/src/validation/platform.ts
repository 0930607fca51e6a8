// What the platform team allows tenants to choose: worker images and Kafka topics. The operator's
// settings (Helm values) decide; admission and the reconciler ask the same function.
import type { FieldError } from './index.js';

export interface PlatformPolicy {
  /** The operator's own image: always allowed for workers. */
  operatorImage: string;
  /** Further allowed worker images; an entry ending in `*` is a prefix. */
  workerImages: readonly string[];
  /** The default topic: always allowed. */
  defaultTopic: string;
  /** Further allowed topics; an entry ending in `*` is a prefix. */
  allowedTopics: readonly string[];
}

const matches = (value: string, patterns: readonly string[]) =>
  patterns.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : value === p));

export const imageAllowed = (p: PlatformPolicy, image: string) =>
  image === p.operatorImage || matches(image, p.workerImages);

export const topicAllowed = (p: PlatformPolicy, topic: string) =>
  topic === p.defaultTopic || matches(topic, p.allowedTopics);

/** Kafka refuses "." and ".." whatever the allowlist says. */
const KAFKA_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** Field errors for a batch spec's worker image and output topic under the platform's policy. */
export function platformErrors(
  spec: {
    workers?: { image?: string | undefined } | undefined;
    output?: { kafkaTopic?: string | undefined } | undefined;
  },
  p: PlatformPolicy,
): FieldError[] {
  const errors: FieldError[] = [];
  const image = spec.workers?.image;
  if (image !== undefined && !imageAllowed(p, image))
    errors.push({
      field: 'spec.workers.image',
      message: `image "${image}" is not allowed on this platform; remove spec.workers.image to use the operator's image${
        p.workerImages.length ? ` or use one of: ${p.workerImages.join(', ')}` : ''
      } (Helm value operator.allowedWorkerImages, env WORKER_IMAGES)`,
    });
  const topic = spec.output?.kafkaTopic;
  if (topic !== undefined) {
    if (!KAFKA_TOPIC.test(topic) || topic === '.' || topic === '..')
      errors.push({
        field: 'spec.output.kafkaTopic',
        message: `"${topic}" is not a valid Kafka topic name (letters, digits, ".", "_", "-"; not "." or "..")`,
      });
    else if (!topicAllowed(p, topic))
      errors.push({
        field: 'spec.output.kafkaTopic',
        message: `topic "${topic}" is not allowed on this platform; remove it to use "${p.defaultTopic}"${
          p.allowedTopics.length ? ` or use one of: ${p.allowedTopics.join(', ')}` : ''
        } (Helm value kafka.allowedTopics, env KAFKA_ALLOWED_TOPICS)`,
      });
  }
  return errors;
}
