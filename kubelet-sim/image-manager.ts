/**
 * Makes sure a container's image is there before the container is created: asks the runtime's
 * ImageService (ImageStatus), pulls when the pull policy says so (PullImage), and backs off
 * pulls that keep failing, per pod and image.
 *
 * Mirrors kubelet `pkg/kubelet/images/image_manager.go` (EnsureImageExists, shouldPullImage,
 * the `<pod UID>_<image>` back-off key, IsInBackOffSinceUpdate) with the reasons of
 * `pkg/kubelet/images/types.go` (ErrImagePull, ImagePullBackOff, ErrImageNeverPull,
 * ImageInspectError, InvalidImageName) and the back-off of `kubelet.go` (imageBackOff: 10 s
 * doubling to 300 s). Differences: pulls are serial per pod (no parallel puller, no pull QPS),
 * no pull secrets; and our apiserver does not default `imagePullPolicy`, so the defaulting of
 * `pkg/apis/core/v1/defaults.go` (SetDefaults_Container: `Always` for `:latest` or no tag,
 * `IfNotPresent` otherwise) happens here.
 */
import type { ImageServiceClient, PodSandboxConfigIn } from '../shared/cri/client.js';
import type { Container as ContainerSpec, Pod } from '../shared/api/core-v1.js';
import type { Backoff } from './backoff.js';
import { criMessage } from './cri-errors.js';
import type { Logger } from '../shared/logging.js';

/** The ImageService calls the kubelet makes; the real client, or a fake in tests. */
export type ImageService = Pick<ImageServiceClient, 'imageStatus' | 'pullImage'>;

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ImageError {
  reason:
    'ErrImagePull' | 'ImagePullBackOff' | 'ErrImageNeverPull' | 'ImageInspectError' | 'InvalidImageName';
  message: string;
  /** When the pod should be synced again to go on (a back-off that ends, or one that starts). */
  retryAfterMs?: number;
}

/** `pulled`: the image was pulled now (else it was already present). */
export type EnsureResult = { imageRef: string; pulled?: boolean } | { error: ImageError };

// A reference as the Docker distribution grammar allows it: [host[:port]/]path[:tag][@digest],
// lower-case path components (reference.ParseNormalizedNamed refuses the rest).
const REFERENCE =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,})?$/;

/** The tag of a reference, '' when it has none (a digest is not a tag). */
function tagOf(image: string): string {
  const noDigest = image.split('@')[0]!;
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(colon + 1) : '';
}

/** The container's pull policy, defaulted as the apiserver would (SetDefaults_Container). */
export function pullPolicyOf(spec: ContainerSpec): PullPolicy {
  const set = spec.imagePullPolicy;
  if (set === 'Always' || set === 'IfNotPresent' || set === 'Never') return set;
  const image = spec.image ?? '';
  const tag = tagOf(image);
  return (tag === '' && !image.includes('@')) || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

export class ImageManager {
  constructor(
    private readonly images: ImageService,
    /** Pull back-off (upstream imageBackOff), keyed `<pod UID>_<image>`. */
    readonly backoff: Backoff,
    private readonly log: Logger,
    /** After a failed pull, how soon the pod is synced again to show ImagePullBackOff. */
    private readonly afterFailureMs = 1000,
  ) {}

  /** The image reference to create the container with, or why the container cannot start. */
  async ensureImageExists(
    pod: Pod,
    spec: ContainerSpec,
    sandboxConfig: PodSandboxConfigIn,
  ): Promise<EnsureResult> {
    const image = spec.image ?? '';
    if (!REFERENCE.test(image)) {
      return {
        error: {
          reason: 'InvalidImageName',
          message: `Failed to apply default image tag ${JSON.stringify(image)}: couldn't parse image name ${JSON.stringify(image)}: invalid reference format`,
        },
      };
    }
    let present: string | undefined;
    try {
      const { image: found } = await this.images.imageStatus({ image: { image } });
      present = found?.id || undefined;
    } catch (err) {
      return {
        error: {
          reason: 'ImageInspectError',
          message: `Failed to inspect image ${JSON.stringify(image)}: ${criMessage(err)}`,
        },
      };
    }
    const policy = pullPolicyOf(spec);
    const mustPull = policy === 'Always' || (policy === 'IfNotPresent' && !present);
    if (!mustPull) {
      if (present) return { imageRef: present };
      return {
        error: {
          reason: 'ErrImageNeverPull',
          message: `Container image ${JSON.stringify(image)} is not present with pull policy of Never`,
        },
      };
    }
    const key = `${pod.metadata.uid}_${image}`;
    const wait = this.backoff.inBackOffSinceUpdate(key);
    if (wait > 0) {
      return {
        error: {
          reason: 'ImagePullBackOff',
          message: `Back-off pulling image ${JSON.stringify(image)}`,
          retryAfterMs: wait,
        },
      };
    }
    this.log(
      `pulling image ${JSON.stringify(image)} for ${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`,
    );
    try {
      const { image_ref } = await this.images.pullImage({
        image: { image, user_specified_image: image },
        sandbox_config: sandboxConfig,
      });
      this.backoff.gc();
      return { imageRef: image_ref || present || image, pulled: true };
    } catch (err) {
      const message = criMessage(err);
      this.log(`Failed to pull image ${JSON.stringify(image)}: ${message}`);
      this.backoff.next(key, Date.now());
      return {
        error: {
          reason: 'ErrImagePull',
          message,
          retryAfterMs: Math.min(this.afterFailureMs, this.backoff.get(key)),
        },
      };
    }
  }

  /** Forgets the pod's pull back-offs (it is gone). */
  forgetPod(uid: string): void {
    this.backoff.resetPrefix(`${uid}_`);
  }
}
